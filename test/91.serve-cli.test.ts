// `rome-node serve` as a process: SIGTERM during jobs lets the running job finish within the grace
// period, cancels the queued one, writes both to the state directory and exits 0; a restart serves
// them again; with no grace the running job is cancelled. A non-loopback address without a token
// is refused before any model loads.
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, tempDir } from "./helpers.js";
import { call, events } from "./serve-helpers.js";

const MAIN = join(ROOT, "lib", "cli", "main.ts");
const TSX = pathToFileURL(join(ROOT, "node_modules", "tsx", "dist", "loader.mjs")).href;
const TRACE = { prompt: "Castle of Berkbre is located in the city of", subject: "Castle of Berkbre", kinds: ["resid", "mlp", "attn"], samples: 10 };

interface Server { child: ChildProcess; url: string; exit: Promise<{ code: number | null; out: string; err: string }> }

/** Starts the CLI's server and resolves once it listens. */
function serve(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--port", "0", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const exit = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on("exit", (code) => resolve({ code, out, err })));
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]!, exit });
    });
    child.stderr!.on("data", (d) => (err += d));
    void exit.then((r) => reject(new Error(`serve exited with ${r.code} before listening: ${r.err}`)));
  });
}

/** Resolves at the job's first progress event. */
function firstProgress(url: string, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = false;
    events(url, id, (e) => {
      if (e.event === "progress" && !seen) {
        seen = true;
        resolve();
      }
    }).catch(reject);
  });
}

test("SIGTERM: the running job finishes within the grace period, the queued one is cancelled, both are stored, exit 0; a restart serves them; with no grace a running job is cancelled", async (t) => {
  const state = tempDir(t);
  const first = await serve(["--state-dir", state, "--grace", "60"]);
  t.teardown(() => first.child.kill("SIGKILL"));
  const running = (await call(first.url, "POST", "/trace", TRACE)).body.id as string;
  const queued = (await call(first.url, "POST", "/trace", TRACE)).body.id as string;
  await firstProgress(first.url, running);
  first.child.kill("SIGTERM");
  const end = await first.exit;
  t.is(end.code, 0, end.err);
  t.regex(end.out, /SIGTERM, stopping[\s\S]*stopped/);
  const stored = (id: string) => JSON.parse(readFileSync(join(state, "jobs", `${id}.json`), "utf8"));
  t.is(stored(running).state, "succeeded");
  t.is(stored(running).result.traces.attn.scores.length, 11);
  t.is(stored(queued).state, "cancelled");
  t.is(stored(queued).error.code, "ERR_SHUTTING_DOWN");

  const second = await serve(["--state-dir", state, "--grace", "0"]);
  t.teardown(() => second.child.kill("SIGKILL"));
  const back = await call(second.url, "GET", `/jobs/${running}`);
  t.deepEqual(back.body.result, stored(running).result);
  t.is((await call(second.url, "GET", `/jobs/${queued}`)).body.state, "cancelled");
  const cut = (await call(second.url, "POST", "/trace", { ...TRACE, samples: 50 })).body.id as string;
  await firstProgress(second.url, cut);
  second.child.kill("SIGTERM");
  const end2 = await second.exit;
  t.is(end2.code, 0, end2.err);
  t.is(stored(cut).state, "cancelled");
  t.is(stored(cut).error.code, "ERR_SHUTTING_DOWN");
});

test("serve refuses a non-loopback address without a token, before loading the model", async (t) => {
  const child = spawn(process.execPath, ["--import", TSX, MAIN, "--model", "/nonexistent/model", "serve", "--host", "0.0.0.0"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const code = await new Promise((resolve) => child.on("exit", resolve));
  t.is(code, 2);
  t.regex(err, /ERR_ARGUMENT.*refusing to listen on 0\.0\.0\.0 without a bearer token/);
});
