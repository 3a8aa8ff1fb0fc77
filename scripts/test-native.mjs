// `npm run test:native`: configures and builds the addon's C++ test program (rome_native_test)
// with CMake, without Node, and runs it; exits non-zero when the build or any check fails.
// Options (flags or environment): --blas=ON|OFF (ROME_USE_BLAS), --cuda=ON|OFF (ROME_USE_CUDA),
// --sanitize (ROME_SANITIZE: address + undefined). Each configuration builds in its own folder
// under build/, so CI can run `--blas=ON` and `--blas=OFF` side by side.
import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const flag = (name, env, dflt) => {
  const arg = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  const v = arg ? (arg.includes("=") ? arg.split("=")[1] : "ON") : (process.env[env] ?? dflt);
  return /^(on|1|true|yes)$/i.test(v) ? "ON" : "OFF";
};
const blas = flag("blas", "ROME_USE_BLAS", "ON");
const cuda = flag("cuda", "ROME_USE_CUDA", "ON");
const sanitize = flag("sanitize", "ROME_SANITIZE", "OFF");
const dir = join(root, "build", `native-test-blas${blas}-cuda${cuda}${sanitize === "ON" ? "-asan" : ""}`);

function run(cmd, args, env = process.env) {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: root, env });
  if (r.error) {
    console.error(`test:native: could not run ${cmd}: ${r.error.message} (install cmake and a C++17 compiler)`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run("cmake", ["-S", root, "-B", dir, `-DROME_USE_BLAS=${blas}`, `-DROME_USE_CUDA=${cuda}`, `-DROME_SANITIZE=${sanitize}`,
  "-DROME_BUILD_ADDON=OFF", "-DROME_BUILD_TESTS=ON", `-DCMAKE_BUILD_TYPE=${sanitize === "ON" ? "RelWithDebInfo" : "Release"}`]);
run("cmake", ["--build", dir, "--target", "rome_native_test", "-j", String(Math.min(4, availableParallelism()))]);
const env = { ...process.env };
if (sanitize === "ON") env.ASAN_OPTIONS = env.ASAN_OPTIONS ?? "detect_leaks=1:abort_on_error=0";
if (sanitize === "ON") env.UBSAN_OPTIONS = env.UBSAN_OPTIONS ?? "print_stacktrace=1:halt_on_error=1";
run(join(dir, "rome_native_test"), [], env);
