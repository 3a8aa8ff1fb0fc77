// `npm run bench -- <name> [args]`: runs scripts/bench-<name>.ts, which prints a table and writes
// bench/results/<name>.json through scripts/bench-util.ts. With no name, lists the benchmarks.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const names = readdirSync(here)
  .filter((f) => /^bench-[a-z0-9-]+\.ts$/.test(f) && f !== "bench-util.ts")
  .map((f) => f.slice("bench-".length, -".ts".length));
const name = process.argv[2];
if (!name || !names.includes(name)) {
  console.error(`usage: npm run bench -- <name>\nbenchmarks: ${names.join(", ")}`);
  process.exit(name ? 2 : 0);
}
process.argv.splice(2, 1);
await import(pathToFileURL(join(here, `bench-${name}.ts`)).href);
