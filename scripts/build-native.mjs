// Builds the native addon (build/Release/rome_native.node): cmake-js first, node-gyp (CPU-only,
// binding.gyp) when CMake is missing or fails. Run by `npm install` / `npm ci` (the "install" script,
// which also keeps npm from running its implicit `node-gyp rebuild` for a package with a
// binding.gyp, and runs where the package is installed as a dependency), where a failure only
// warns — model loading, inference and tracing do not need the addon — and by `npm test` /
// `npm run build:native` with --required, where it fails.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const required = process.argv.includes("--required");
const bin = (name) => join(root, "node_modules", ".bin", name);
// npm bundles node-gyp (and names it in npm_config_node_gyp when it runs a script); binding.gyp
// builds the CPU kernels without CMake.
const npmGyp = process.env.npm_config_node_gyp ||
  join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js");

function attempt(label, cmd, args, needs = cmd) {
  if (!existsSync(needs)) return false;
  console.log(`rome-node: building the native addon with ${label}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  return r.status === 0;
}

const ok =
  attempt("cmake-js", bin("cmake-js"), ["compile"]) ||
  attempt("node-gyp (CPU-only fallback)", process.execPath, [npmGyp, "rebuild"], npmGyp);

if (!ok) {
  const msg = "rome-node: the native addon could not be built (install cmake and a C++17 compiler, optionally libopenblas-dev and liblapacke-dev, then run `npm run build:native`). Inference and tracing work without it; statistics and edits need it.";
  if (required) {
    console.error(msg);
    process.exit(1);
  }
  console.warn(msg);
}
