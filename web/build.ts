// Builds the browser side: the card reveal page (web/reveal) and the example host (web/example) bundled by
// esbuild into dist/web, next to their HTML and CSS. The bundles are self-contained (jose included): the
// pages make no third-party request. Run by `npm run build:web` (part of `npm run build`) and by the tests.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export async function buildWeb(outDir = join(root, "dist", "web")): Promise<string> {
  await build({
    entryPoints: {
      "reveal/reveal": join(root, "web/reveal/main.ts"),
      "example/host": join(root, "web/example/host.ts"),
    },
    outdir: outDir,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: true,
    legalComments: "none",
    logLevel: "warning",
  });
  for (const file of ["reveal/index.html", "reveal/reveal.css", "example/index.html", "example/host.css"]) {
    mkdirSync(dirname(join(outDir, file)), { recursive: true });
    copyFileSync(join(root, "web", file), join(outDir, file));
  }
  return outDir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildWeb();
  process.stdout.write(`web assets built in ${out}\n`);
}
