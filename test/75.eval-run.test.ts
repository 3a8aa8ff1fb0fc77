import test from "ava";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { parseEditDataset } from "../lib/eval/datasets.js";
import { ROOT, tempDir, TINYFACTS } from "./helpers.js";

const CLI = join(ROOT, "lib", "cli", "main.ts");

/** Runs the eval command; with `killAfterLines`, SIGKILLs it once the output has that many lines. */
function runEval(args: string[], out: string, killAfterLines?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import=tsx", CLI, "eval", ...args, "-o", out], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const timer = killAfterLines === undefined ? undefined : setInterval(() => {
      if (existsSync(out) && readFileSync(out, "utf8").split("\n").filter(Boolean).length >= killAfterLines) child.kill("SIGKILL");
    }, 50);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (timer) clearInterval(timer);
      if (code !== 0 && signal === null) reject(new Error(`eval exited ${code}: ${err}`));
      else resolve({ code, signal });
    });
  });
}

const keys = (file: string) => readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).key as string);

test("eval killed with SIGKILL midway and restarted ends with exactly one line per record (r-ROME alone)", async (t) => {
  const out = join(tempDir(t), "alone.jsonl");
  const args = ["--method", "r-rome", "--mode", "alone", "-d", join(TINYFACTS, "counterfact.json"), "--n", "3", "--steps", "3"];
  const first = await runEval(args, out, 1);
  t.is(first.signal, "SIGKILL");
  t.true(keys(out).length < 3);
  await runEval(args, out);
  t.deepEqual(keys(out), ["r:0", "r:1", "r:2"]);
  const summary = JSON.parse(readFileSync(out.replace(/\.jsonl$/, ".summary.json"), "utf8"));
  t.is(summary.records, 3);
  t.true(existsSync(out.replace(/\.jsonl$/, ".summary.csv")) && existsSync(out.replace(/\.jsonl$/, ".svg")));
});

test("a sequential MEMIT run killed after its first batch resumes with the saved edit and one line per batch", async (t) => {
  const out = join(tempDir(t), "seq.jsonl");
  const args = ["--method", "memit", "--mode", "sequential", "--batch-size", "2", "-d", join(TINYFACTS, "counterfact.json"), "--n", "4", "--steps", "3", "--untouched", "10"];
  await runEval(args, out, 1);
  await runEval(args, out);
  t.deepEqual(keys(out), ["sequential:0", "sequential:1"]);
  const lines = readFileSync(out, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  t.is(lines[1].edits, 4);
  t.true(existsSync(`${out}.edits/0.json`) && existsSync(`${out}.edits/1.json`));
});

test("datasets: zsRE (MEND schema) and the single-file schema are read; a bad record is named", (t) => {
  const zsre = parseEditDataset([{ subject: "Watts Humphrey", src: "What university did Watts Humphrey attend?", alt: "University of Michigan", answers: ["Illinois Institute of Technology"], rephrase: "What university did Watts Humphrey take part in?", loc: "nq question: who played desmond doss father in hacksaw ridge", loc_ans: "Hugo Weaving" }], "z.json");
  t.is(zsre.schema, "zsre");
  t.is(zsre.records[0]!.request.prompt, "What university did {} attend?");
  t.deepEqual(zsre.records[0]!.locality, [{ prompt: "nq question: who played desmond doss father in hacksaw ridge?", target: " Hugo Weaving" }]);
  const single = parseEditDataset([{ prompt: "Castle of Berkbre is located in the city of", subject: "Castle of Berkbre", target_new: "Berlin", ground_truth: "Montreal", rephrase_prompt: "Castle of Berkbre is a landmark in the city of", locality_prompt: "Tower of Deathproust can be found in the city of" }], "s.json");
  t.is(single.schema, "single");
  t.is(single.records[0]!.request.targetTrue, "Montreal");
  t.is(single.records[0]!.locality[0]!.target, undefined);
  const e = t.throws(() => parseEditDataset([
    { prompt: "A is in", subject: "A", target_new: "B", rephrase_prompt: "A lies in", locality_prompt: "C is in" },
    { prompt: "X is in", subject: "Y", target_new: "B", rephrase_prompt: "Y lies in", locality_prompt: "C is in" },
  ], "s.json"), { instanceOf: RomeError });
  t.is((e as RomeError).code, "ERR_DATASET");
  t.regex(e!.message, /s\.json: record 1, field 'prompt': does not contain the subject "Y"/);
});
