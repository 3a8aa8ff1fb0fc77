// Resumable JSON lines: records survive reopening, a line cut short by a kill is dropped and the
// file truncated back to the last complete line, damage in a complete line is an error.
import test from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openJsonl, readJsonl } from "../lib/io/jsonl.js";
import { RomeError } from "../lib/errors.js";

interface Rec { key: string; scores: number[] }

function tmpFile(): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rome-jsonl-"));
  return { dir, file: path.join(dir, "sub", "traces.jsonl") };
}

test("append, reopen: done keys and records come back", (t) => {
  const { dir, file } = tmpFile();
  const w = openJsonl<Rec>(file);
  t.is(w.done.size, 0);
  w.append({ key: "0:resid", scores: [0.1, 0.2] });
  w.append({ key: "0:mlp", scores: [0.3] });
  // flushed at once: visible to another reader before close
  t.is(readJsonl<Rec>(file).length, 2);
  w.close();
  const again = openJsonl<Rec>(file);
  t.deepEqual([...again.done], ["0:resid", "0:mlp"]);
  t.deepEqual(again.records[0], { key: "0:resid", scores: [0.1, 0.2] });
  t.is(again.truncatedBytes, 0);
  again.append({ key: "1:resid", scores: [] });
  again.close();
  t.is(fs.readFileSync(file, "utf8").split("\n").length, 4); // 3 lines + final newline
  fs.rmSync(dir, { recursive: true });
});

test("a truncated last line is cut off and the run resumes after the last complete record", (t) => {
  const { dir, file } = tmpFile();
  fs.mkdirSync(path.dirname(file));
  const whole = '{"key":"a","scores":[1]}\n{"key":"b","scores":[2]}\n';
  const partial = '{"key":"c","sco';
  fs.writeFileSync(file, whole + partial);
  t.deepEqual(readJsonl<Rec>(file).map((r) => r.key), ["a", "b"]); // reading alone does not modify
  t.is(fs.statSync(file).size, whole.length + partial.length);
  const w = openJsonl<Rec>(file);
  t.deepEqual([...w.done], ["a", "b"]);
  t.false(w.done.has("c"));
  t.is(w.truncatedBytes, partial.length);
  t.is(fs.readFileSync(file, "utf8"), whole);
  w.append({ key: "c", scores: [3] });
  t.true(w.done.has("c"));
  w.close();
  t.is(fs.readFileSync(file, "utf8"), whole + '{"key":"c","scores":[3]}\n');
  t.throws(() => w.append({ key: "d", scores: [] }), { instanceOf: RomeError });
  fs.rmSync(dir, { recursive: true });
});

test("custom keys, fsync, and a damaged complete line is ERR_IO naming the line", (t) => {
  const { dir, file } = tmpFile();
  const w = openJsonl<{ known_id: number; kind: string }>(file, { keyOf: (r) => `${r.known_id}/${r.kind}`, fsync: true });
  w.append({ known_id: 7, kind: "attn" });
  w.close();
  t.deepEqual([...openJsonl<{ known_id: number; kind: string }>(file, { keyOf: (r) => `${r.known_id}/${r.kind}` }).done], ["7/attn"]);
  fs.appendFileSync(file, "not json\n{\"known_id\":8}\n");
  const err = t.throws(() => openJsonl(file), { instanceOf: RomeError });
  t.is(err?.code, "ERR_IO");
  t.regex(err?.message ?? "", /Line 2 /);
  fs.rmSync(dir, { recursive: true });
});
