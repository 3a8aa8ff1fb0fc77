// The command line validates every argument before any long work: each bad argument below fails
// even with a model directory that does not exist, so the check provably runs before the model
// loads (let alone a trace or statistics). Runs lib/cli/main.ts as a child process.
import test from "ava";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, tempDir } from "./helpers.js";

const MAIN = join(ROOT, "lib", "cli", "main.ts");
const TSX = pathToFileURL(join(ROOT, "node_modules", "tsx", "dist", "loader.mjs")).href;
const NO_MODEL = ["--model", "/nonexistent/model"];

function cli(args: string[], cwd = ROOT): Promise<{ code: number | null; out: string; err: string; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ["--import", TSX, MAIN, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, out, err, seconds: (performance.now() - t0) / 1000 }));
  });
}

const TRACE = ["trace", "-p", "Castle of Berkbre is located in the city of", "-s", "Castle of Berkbre"];
const EDIT = ["edit", "-p", "{} is located in the city of", "-s", "Castle of Berkbre", "-n", "Berlin", "-c", join(ROOT, "models", "tinyfacts", "train.txt")];

test("trace -o without an extension, with an unknown one, or in a missing folder fails before the model loads", async (t) => {
  const dir = tempDir(t);
  const cases: [string[], RegExp][] = [
    [[...NO_MODEL, ...TRACE, "--kind", "all", "-o", join(dir, "name")], /ERR_ARGUMENT.*-o\/--out .*no extension; use \.svg, \.png, \.json/],
    [[...NO_MODEL, ...TRACE, "-o", join(dir, "out.txt")], /ERR_ARGUMENT.*unknown extension \.txt/],
    [[...NO_MODEL, ...TRACE, "-o", join(dir, "missing", "out.svg")], /ERR_ARGUMENT.*the folder .*missing does not exist/],
    [[...NO_MODEL, ...TRACE.slice(0, 3), "-s", "Tower of Deathproust"], /ERR_SUBJECT_NOT_FOUND/],
  ];
  const runs = await Promise.all(cases.map(([args]) => cli(args, dir)));
  runs.forEach((r, i) => {
    t.is(r.code, 2, r.err);
    t.regex(r.err, cases[i]![1]);
  });
  t.deepEqual(readdirSync(dir), []);
});

test("edit: a prompt without {}, a missing corpus, a bad export target fail before the model loads", async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, "mine"));
  writeFileSync(join(dir, "mine", "notes.txt"), "keep");
  const cases: [string[], RegExp][] = [
    [[...NO_MODEL, ...EDIT.slice(0, 2), "Castle of Berkbre is located in", ...EDIT.slice(3)], /ERR_ARGUMENT.*must contain "\{\}" exactly once/],
    [[...NO_MODEL, ...EDIT.slice(0, -1), join(dir, "absent.txt")], /ERR_ARGUMENT.*-c\/--corpus .*no such file/],
    [[...NO_MODEL, ...EDIT, "--export-edits", join(dir, "edits.txt")], /ERR_ARGUMENT.*--export-edits .*unknown extension \.txt; use \.safetensors/],
    [[...NO_MODEL, ...EDIT, "--export-checkpoint", join(dir, "mine")], /ERR_IO.*exists and is not an earlier export/],
    [[...NO_MODEL, ...EDIT, "--export-checkpoint", join(dir, "no", "ckpt")], /ERR_IO.*parent directory .* does not exist/],
    [[...NO_MODEL, ...EDIT.slice(0, 4), " ", ...EDIT.slice(5)], /ERR_ARGUMENT.*-s\/--subject is empty/],
  ];
  const runs = await Promise.all(cases.map(([args]) => cli(args, dir)));
  runs.forEach((r, i) => {
    t.is(r.code, 2, r.err);
    t.regex(r.err, cases[i]![1]);
  });
  t.false(existsSync(join(dir, ".rome-cache")));
});

test("numeric flags out of range and a malformed dataset fail before the model loads", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "bad.json"), "[{\"subject\": ");
  const runs = await Promise.all([
    cli([...NO_MODEL, ...TRACE, "--samples", "0"], dir),
    cli([...NO_MODEL, ...TRACE, "--noise", "-1"], dir),
    cli([...NO_MODEL, ...TRACE, "--strategy", "fast"], dir),
    cli([...NO_MODEL, "--threads", "0", "predict", "x"], dir),
    cli([...NO_MODEL, "trace-dataset", "-d", join(dir, "bad.json"), "-o", join(dir, "out.jsonl")], dir),
    cli([...NO_MODEL, "trace-dataset", "-d", join(dir, "bad.json"), "-o", join(dir, "no", "out.jsonl")], dir),
  ]);
  for (const r of runs.slice(0, 4)) {
    t.is(r.code, 1, r.err); // commander's usage error
    t.regex(r.err, /invalid/);
  }
  t.is(runs[4]!.code, 2);
  t.regex(runs[4]!.err, /ERR_DATASET.*not valid JSON/);
  t.is(runs[5]!.code, 2);
  t.regex(runs[5]!.err, /ERR_ARGUMENT.*-o\/--out/);
});

test("trace --kind all -o writes one file per kind beside the name given, nowhere else", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "plots");
  mkdirSync(out);
  const r = await cli([...TRACE, "--kind", "all", "--samples", "2", "--window", "2", "-o", join(out, "fact.svg")], dir);
  t.is(r.code, 0, r.err);
  t.deepEqual(readdirSync(out).sort(), ["fact-attn.svg", "fact-mlp.svg", "fact-resid.svg"]);
  t.deepEqual(readdirSync(dir), ["plots"]);
});

test("edit prints the literal prompt when the subject holds $& and $'", async (t) => {
  const dir = tempDir(t);
  // Enough text for non-singular statistics of TinyFacts' 512-dimensional keys.
  writeFileSync(join(dir, "corpus.txt"), readFileSync(join(ROOT, "models", "tinyfacts", "train.txt"), "utf8").split("\n").slice(0, 400).join("\n"));
  const subject = "Castle $& of $' Berkbre";
  const r = await cli(["edit", "-p", "{} is located in the city of", "-s", subject, "-n", "Berlin", "-c", join(dir, "corpus.txt"), "--steps", "1"], dir);
  t.is(r.code, 0, r.err);
  t.true(r.out.includes(`before: ${subject} is located in the city of →`), r.out);
});
