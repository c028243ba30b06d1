// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by package/folder, so
// BENCHMARKS.md can say where the time goes. Invariant: read-only; it never changes the profile.
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export function summarise(file: string, top = 25): string {
  const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[] };
  const total = profile.samples.length;
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const short = url
      .replace(/^.*node_modules\//, "")
      .replace(/^.*\/work\/main\//, "")
      .replace(/^file:\/\//, "");
    const key = `${functionName || "(anonymous)"} ${short}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits);
    const area =
      url === ""
        ? functionName
        : short.startsWith("node:")
          ? "node internals"
          : short.split("/").slice(0, 2).join("/");
    byArea.set(area, (byArea.get(area) ?? 0) + hits);
  }
  const pct = (n: number) => `${((100 * n) / total).toFixed(1)}%`;
  const lines = [`samples: ${total}`, "", "self time by area:"];
  for (const [k, v] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 15))
    lines.push(`  ${pct(v).padStart(6)}  ${k}`);
  lines.push("", "self time by function:");
  for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${pct(v).padStart(6)}  ${k}`);
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`)
  console.log(summarise(process.argv[2]!, Number(process.argv[3] ?? 25)));
