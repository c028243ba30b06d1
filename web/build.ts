// Builds the browser side: the card reveal page (web/reveal) and the example host (web/example) bundled by
// esbuild into dist/web, next to their HTML and CSS. The bundles are self-contained (jose included): the
// pages make no third-party request. Run by `npm run build:web` (part of `npm run build`) and by the tests.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Write-then-rename: a server (or a parallel test file) reading the assets never sees half a file. */
function put(file: string, contents: Uint8Array | string): void {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, file);
}

export async function buildWeb(outDir = join(root, "dist", "web")): Promise<string> {
  const result = await build({
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
    write: false,
  });
  for (const output of result.outputFiles) put(output.path, output.contents);
  for (const file of ["reveal/index.html", "reveal/reveal.css", "example/index.html", "example/host.css"]) {
    put(join(outDir, file), readFileSync(join(root, "web", file)));
  }
  return outDir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildWeb();
  process.stdout.write(`web assets built in ${out}\n`);
}
