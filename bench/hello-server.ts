// The HTTP baseline: a bare Fastify "hello" route on 127.0.0.1 with the same Fastify version as serve and no
// logger, hooks or database. Invariant: it does the least work any Fastify route can do, so serve's throughput
// divided by this one's is the share of the machine the service itself costs.
import Fastify from "fastify";

const port = Number(process.argv[2] ?? 0);
const app = Fastify({ logger: false });
app.get("/hello", async () => ({ hello: "world" }));
await app.listen({ host: "127.0.0.1", port });
process.send?.({ ready: true });
process.once("SIGTERM", () => void app.close().then(() => process.exit(0)));
