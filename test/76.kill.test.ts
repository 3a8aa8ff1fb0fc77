// A writer killed (SIGKILL) at random moments leaves exportCheckpoint's directory, exportEdits'
// file and the statistics cache either whole or absent: whatever exists loads and verifies, and the
// only other entries are temporaries of the last run that wrote there, which the next write removes.
import test from "ava";
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { loadEdits } from "../lib/edit/export.js";
import { loadStats } from "../lib/edit/stats.js";
import { loadCheckpoint } from "../lib/model/checkpoint.js";
import { ROOT, tempDir } from "./helpers.js";

const CHILD = join(ROOT, "test", "fixtures", "kill-writer.ts");
const KILLS = 10;
const LANES = 2; // writers run two at a time, each in its own directory
const EXPORTED = ["config.json", "merges.txt", "model.safetensors", "tokenizer.json", "vocab.json"];
const TEMPORARY = /^\..+\.(\d+)\.[0-9a-f]{8}\.(?:tmp|old)$/;

/** Runs the writer; resolves with its pid once it exits (killed `delayMs` after it is ready, or done). */
function runWriter(dir: string, delayMs: number | "once"): Promise<{ pid: number; code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dir, ...(delayMs === "once" ? ["once"] : [])], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdout.on("data", (d: Buffer) => {
      if (delayMs !== "once" && d.toString().includes("ready")) setTimeout(() => child.kill("SIGKILL"), delayMs);
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => (code && code !== 0 ? reject(new Error(`writer failed: ${err}`)) : resolve({ pid: child.pid!, code, signal })));
  });
}

/** The pids that wrote the temporaries in one directory. */
function temporaryPids(dir: string): number[] {
  const names = existsSync(dir) ? readdirSync(dir) : [];
  return names.map((n) => TEMPORARY.exec(n)).filter((m) => m !== null).map((m) => Number(m![1]));
}

/** Temporaries in `dir` and its cache, by the pid that wrote them. */
function temporaries(dir: string): number[] {
  return [...temporaryPids(dir), ...temporaryPids(join(dir, "cache"))];
}

test("killed at random moments, the writer leaves every output whole or absent and no temporaries pile up", async (t) => {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const seen = { kills: 0, ckpt: 0, edits: 0, stats: 0, temporaries: 0 };
  const lane = async (dir: string) => {
    const pids: number[] = [];
    for (let k = 0; k < KILLS / LANES; k++) {
      const run = await runWriter(dir, Math.floor(random() * 1200));
      t.is(run.signal, "SIGKILL");
      seen.kills++;
      pids.push(run.pid);
      if (existsSync(join(dir, "ckpt"))) {
        seen.ckpt++;
        t.deepEqual(readdirSync(join(dir, "ckpt")).sort(), EXPORTED, `kill ${k}`);
        t.notThrows(() => loadCheckpoint(join(dir, "ckpt")), `kill ${k}: checkpoint`);
      }
      if (existsSync(join(dir, "edits.safetensors"))) {
        seen.edits++;
        t.is(loadEdits(join(dir, "edits.safetensors")).length, 1, `kill ${k}: edits`);
      }
      for (const f of existsSync(join(dir, "cache")) ? readdirSync(join(dir, "cache")) : []) {
        if (TEMPORARY.test(f)) continue;
        seen.stats++;
        t.notThrows(() => loadStats(join(dir, "cache", f)), `kill ${k}: ${f}`);
      }
      seen.temporaries += temporaries(dir).length;
      // A write into a directory first removes the temporaries of dead writers there, so those left in
      // one directory are all the last writer's: one killed run's, never a pile of several (however
      // early or late each run was killed).
      for (const d of [dir, join(dir, "cache")]) {
        const writers = new Set(temporaryPids(d));
        t.true(writers.size <= 1, `kill ${k}: temporaries of ${writers.size} runs in ${d}`);
        for (const pid of writers) t.true(pids.includes(pid), `kill ${k}: a temporary of pid ${pid}, not a run of this lane`);
      }
      const outside = readdirSync(dir).filter((n) => !TEMPORARY.test(n) && !["ckpt", "edits.safetensors", "cache"].includes(n));
      t.deepEqual(outside, [], `kill ${k}`);
    }
    await runWriter(dir, "once");
    t.deepEqual(temporaries(dir), []);
  };
  await Promise.all(Array.from({ length: LANES }, () => lane(tempDir(t))));
  t.is(seen.kills, KILLS);
  t.log(`after ${KILLS} kills: ${JSON.stringify(seen)}`);
});
