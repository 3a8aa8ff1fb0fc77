// The HTTP service (lib/serve) on a real loopback port, through undici: every route, its checks
// and limits, the batching of /predict (same numbers as in-process), jobs with SSE progress and
// cancellation, the queue limit, edits with per-request edit sets, export/import, and the state
// directory across a restart. One server serves the serial tests; a second checks the token.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Model } from "../lib/runtime/model.js";
import { Service } from "../lib/serve/service.js";
import { TINYFACTS } from "./helpers.js";
import { call, events, finished } from "./serve-helpers.js";

const PROMPT = "Castle of Berkbre is located in the city of";
const SUBJECT = "Castle of Berkbre";
const LIMITS = { runningJobs: 1, queuedJobs: 1, samples: 20, promptTokens: 64, generateTokens: 30, datasetSize: 3, bodyBytes: 64 * 1024 };
/** Probabilities through the service and in-process differ only by batch layout (float32 sums). */
const TOLERANCE = 1e-5;

let service: Service;
let base: string;
let local: Model;
let stateDir: string;

test.before(async () => {
  stateDir = mkdtempSync(join(tmpdir(), "rome-serve-test-"));
  [service, local] = await Promise.all([
    Service.start({ models: [{ dir: TINYFACTS, statsTokens: 4000, statsDir: join(stateDir, "stats") }], port: 0, stateDir, limits: LIMITS }),
    Model.load(TINYFACTS) as Promise<Model>,
  ]);
  base = service.url;
});

test.after.always(async () => {
  await service?.shutdown(0);
  await local?.dispose();
  rmSync(stateDir, { recursive: true, force: true });
});

test.serial("GET /health, /models and /openapi.json; every route is in the OpenAPI document", async (t) => {
  const h = await call(base, "GET", "/health");
  t.is(h.status, 200);
  t.deepEqual(h.body.jobs, { running: 0, queued: 0 });
  const m = await call(base, "GET", "/models");
  t.is(m.body.models[0].name, "tinyfacts");
  t.is(m.body.models[0].fingerprint, local.fingerprint);
  t.is(m.body.models[0].config.nLayer, 6);
  const doc = (await call(base, "GET", "/openapi.json")).body;
  const routes = Object.entries(doc.paths as Record<string, object>).flatMap(([p, ops]) => Object.keys(ops).map((op) => `${op.toUpperCase()} ${p}`)).sort();
  t.deepEqual(routes, [
    "DELETE /edits/{id}", "DELETE /jobs/{id}", "GET /edits", "GET /edits/{id}/export", "GET /health", "GET /jobs", "GET /jobs/{id}",
    "GET /jobs/{id}/events", "GET /models", "GET /openapi.json", "POST /edits", "POST /edits/import", "POST /evaluate", "POST /generate",
    "POST /logprob", "POST /predict", "POST /trace", "POST /trace-dataset",
  ]);
});

test.serial("bad requests answer 4xx with the error's own code, before any model work", async (t) => {
  const long = Array.from({ length: 80 }, () => "Berkbre").join(" ");
  const fact = { prompt: PROMPT, subject: SUBJECT };
  const cases: [string, string, unknown, number, string, RegExp][] = [
    ["POST", "/predict", { prompts: [PROMPT], topk: 3 }, 400, "ERR_VALIDATION", /body must NOT have additional properties: 'topk'/],
    ["POST", "/predict", { prompts: [] }, 400, "ERR_VALIDATION", /body.prompts must NOT have fewer than 1 items/],
    ["POST", "/predict", { prompts: [PROMPT], topK: 0 }, 400, "ERR_VALIDATION", /body.topK must be >= 1/],
    ["POST", "/predict", { prompts: [long] }, 400, "ERR_PROMPT_TOO_LONG", /prompt 0 has \d+ tokens, more than the server's limit of 64/],
    ["POST", "/predict", { prompts: ["x".repeat(70 * 1024)] }, 413, "ERR_BODY_TOO_LARGE", /larger than the server's limit/],
    ["POST", "/predict", { prompts: [PROMPT], edits: ["nope"] }, 404, "ERR_EDIT_UNKNOWN", /no applied edit has id "nope"/],
    ["POST", "/predict", { prompts: [PROMPT], model: "gpt-j" }, 404, "ERR_NOT_FOUND", /no model named "gpt-j"; served: tinyfacts/],
    ["POST", "/generate", { prompt: PROMPT, maxTokens: 31 }, 400, "ERR_TOO_MANY_TOKENS", /maxTokens 31 is more than the server's limit of 30/],
    ["POST", "/trace", { ...fact, samples: 21 }, 400, "ERR_TOO_MANY_SAMPLES", /samples 21 is more than the server's limit of 20/],
    ["POST", "/trace", { ...fact, kinds: ["resid", "mpl"] }, 400, "ERR_VALIDATION", /body.kinds.1/],
    ["POST", "/trace", { prompt: PROMPT, subject: "Tower of Deathproust" }, 400, "ERR_SUBJECT_NOT_FOUND", /does not occur in the prompt/],
    ["POST", "/trace-dataset", { facts: [fact, fact, fact, fact] }, 400, "ERR_DATASET_TOO_LARGE", /4 facts in one request, more than the server's limit of 3/],
    ["POST", "/edits", { requests: [{ prompt: "{} is {} in", subject: SUBJECT, targetNew: "Berlin" }] }, 400, "ERR_ARGUMENT", /exactly once/],
    ["POST", "/edits", { requests: [{ prompt: "{} is in", subject: SUBJECT, targetNew: "Berlin" }], layer: 6 }, 400, "ERR_ARGUMENT", /outside the model's layers 0–5/],
    ["GET", "/jobs/123", undefined, 404, "ERR_NOT_FOUND", /no job has id "123"/],
    ["DELETE", "/edits/e-0", undefined, 404, "ERR_EDIT_UNKNOWN", /no applied edit/],
    ["POST", "/edits/import", undefined, 400, "ERR_VALIDATION", /send the edits file as the body/],
    ["GET", "/nowhere", undefined, 404, "ERR_NOT_FOUND", /no route GET \/nowhere/],
  ];
  for (const [method, path, body, status, code, message] of cases) {
    const a = await call(base, method as "GET", path, body);
    t.is(a.status, status, `${method} ${path} ${JSON.stringify(a.body)}`);
    t.is(a.body.error?.code, code, `${method} ${path}`);
    t.regex(a.body.error?.message ?? "", message);
  }
  const edited = await call(base, "POST", "/edits/import", new Uint8Array([1, 2, 3]));
  t.is(edited.status, 400);
  t.true(["ERR_SAFETENSORS_HEADER", "ERR_SAFETENSORS_TRUNCATED", "ERR_EDITS_FILE"].includes(edited.body.error.code), edited.body.error.code);
  t.deepEqual((await call(base, "GET", "/jobs")).body.jobs, []);
});

test.serial("concurrent /predict requests are batched and answer what the model answers in-process", async (t) => {
  const prompts = [PROMPT, "Tower of Deathproust can be found in the city of", "Castle of Berkbre is", "The", "Castle of Berkbre is located in the country of", "Berkbre"];
  const answers = await Promise.all(prompts.map((p, i) => call(base, "POST", "/predict", { prompts: [p], topK: 1 + i })));
  const expected = await local.predict(prompts, { topK: 6 });
  answers.forEach((a, i) => {
    t.is(a.status, 200);
    t.is(a.body.predictions[0].length, 1 + i);
    a.body.predictions[0].forEach((p: { id: number; prob: number }, k: number) => {
      t.is(p.id, expected[i]![k]!.id);
      t.true(Math.abs(p.prob - expected[i]![k]!.prob) < TOLERANCE, `prompt ${i} rank ${k}: ${p.prob} vs ${expected[i]![k]!.prob}`);
    });
  });
  const lp = await call(base, "POST", "/logprob", { pairs: [{ prompt: PROMPT, target: " Montreal" }] });
  const [want] = await local.logprob([{ prompt: PROMPT, target: " Montreal" }]);
  t.true(Math.abs(lp.body.results[0].sum - want!.sum) < TOLERANCE);
  const gen = await call(base, "POST", "/generate", { prompt: "Castle of Berkbre is", maxTokens: 8 });
  t.is(gen.body.text, await local.generate("Castle of Berkbre is", { maxTokens: 8 }));
});

test.serial("a trace job streams its progress over SSE to the end, and GET /jobs/:id holds the same result", async (t) => {
  const submitted = await call(base, "POST", "/trace", { prompt: PROMPT, subject: SUBJECT, kinds: ["resid", "mlp"], samples: 3, window: 3 });
  t.is(submitted.status, 202);
  t.is(submitted.headers.location, `/jobs/${submitted.body.id}`);
  const seen = await events(base, submitted.body.id);
  const names = seen.map((e) => e.event);
  t.is(names.at(-1), "end");
  t.is(names.at(-2), "result");
  const progress = seen.filter((e) => e.event === "progress").map((e) => e.data);
  t.true(progress.length > 0);
  for (let i = 1; i < progress.length; i++) if (progress[i].phase === progress[i - 1].phase) t.true(progress[i].done >= progress[i - 1].done);
  t.is(progress.at(-1).done, progress.at(-1).total);
  const job = (await call(base, "GET", `/jobs/${submitted.body.id}`)).body;
  t.is(job.state, "succeeded");
  t.deepEqual(job.result, seen.at(-2)!.data);
  const resid = job.result.traces.resid;
  t.is(resid.answer.token, " Montreal");
  t.is(resid.scores.length, resid.tokens.length);
  t.is(resid.scores[0].length, 6);
  t.true(resid.highScore > 0.9 && resid.lowScore < 0.1);
});

test.serial("DELETE /jobs/:id cancels a running trace within a batch; the queue holds one job and then answers 429 with Retry-After", async (t) => {
  const long = { prompt: PROMPT, subject: SUBJECT, kinds: ["resid", "mlp", "attn"], samples: 20 };
  const first = (await call(base, "POST", "/trace", long)).body.id as string;
  const second = await call(base, "POST", "/trace", long);
  t.is(second.status, 202);
  const third = await call(base, "POST", "/trace", long);
  t.is(third.status, 429);
  t.is(third.body.error.code, "ERR_QUEUE_FULL");
  t.true(Number(third.headers["retry-after"]) >= 1);
  // the queued job is cancelled at once; the running one at its next batch, after its first progress
  const queued = await call(base, "DELETE", `/jobs/${second.body.id}`);
  t.is(queued.status, 202);
  t.is(queued.body.state, "cancelled");
  let cancelled = false;
  const seen = await events(base, first, (e) => {
    if (e.event === "progress" && !cancelled) {
      cancelled = true;
      void call(base, "DELETE", `/jobs/${first}`);
    }
  });
  t.is(seen.at(-2)!.event, "error");
  t.is(seen.at(-2)!.data.code, "ERR_ABORTED");
  const job = (await call(base, "GET", `/jobs/${first}`)).body;
  t.is(job.state, "cancelled");
  t.true(job.progress.done < job.progress.total, `stopped at ${job.progress.done} of ${job.progress.total}`);
  const again = await call(base, "DELETE", `/jobs/${first}`);
  t.is(again.status, 409);
  t.is(again.body.error.code, "ERR_JOB_STATE");
  t.is((await call(base, "GET", "/health")).body.jobs.running, 0);
});

test.serial("trace-dataset and evaluate jobs", async (t) => {
  const facts = [{ known_id: 7, prompt: PROMPT, subject: SUBJECT, attribute: "Montreal" }, { prompt: "Tower of Deathproust can be found in the city of", subject: "Tower of Deathproust" }];
  const ds = await finished(base, (await call(base, "POST", "/trace-dataset", { facts, kinds: ["resid"], samples: 2 })).body.id);
  t.is(ds.body.state, "succeeded", JSON.stringify(ds.body.error));
  t.deepEqual(ds.body.result.facts.map((f: { known_id: number }) => f.known_id), [7, 1]);
  t.is(ds.body.result.averages.resid.mean.length, 6); // six buckets of (layers)
  t.is(ds.body.progress.done, 2);
  const records = JSON.parse(readFileSync(join(TINYFACTS, "counterfact.json"), "utf8")).slice(0, 2);
  const ev = await finished(base, (await call(base, "POST", "/evaluate", { records })).body.id);
  t.is(ev.body.state, "succeeded", JSON.stringify(ev.body.error));
  t.deepEqual(ev.body.result.records.map((r: { case_id: number }) => r.case_id), records.map((r: { case_id: number }) => r.case_id));
  const bad = await finished(base, (await call(base, "POST", "/evaluate", { records: [{ case_id: "x" }] })).body.id);
  t.is(bad.body.state, "failed");
  t.is(bad.body.error.code, "ERR_DATASET");
});

let editId: string;
let before: number;

test.serial("an edit job creates an edit; requests choose their edit set; undo restores the model exactly; export and import round-trip", async (t) => {
  before = (await call(base, "POST", "/predict", { prompts: [PROMPT], topK: 1 })).body.predictions[0][0].prob;
  const job = await finished(base, (await call(base, "POST", "/edits", { requests: [{ prompt: "{} is located in the city of", subject: SUBJECT, targetNew: "Berlin" }] })).body.id);
  t.is(job.body.state, "succeeded", JSON.stringify(job.body.error));
  editId = job.body.result.edits[0].id;
  const listed = (await call(base, "GET", "/edits")).body.edits;
  t.deepEqual(listed.map((e: { id: string }) => e.id), [editId]);
  t.is(listed[0].info.request.targetNew, "Berlin");
  const top = async (edits?: string[]) => (await call(base, "POST", "/predict", { prompts: [PROMPT], topK: 1, ...(edits ? { edits } : {}) })).body.predictions[0][0];
  t.is((await top()).token, " Berlin");
  t.is((await top([])).token, " Montreal"); // this request only: no edits
  t.is((await top([editId])).token, " Berlin");
  const file = await call(base, "GET", `/edits/${editId}/export`);
  t.is(file.status, 200);
  t.is(file.headers["content-type"], "application/octet-stream");
  const undone = await call(base, "DELETE", `/edits/${editId}`);
  t.is(undone.body.id, editId);
  const back = await top();
  t.is(back.token, " Montreal");
  t.is(back.prob, before); // bit-identical to the model before the edit
  const imported = await call(base, "POST", "/edits/import", new Uint8Array(file.body));
  t.is(imported.status, 201);
  t.deepEqual(imported.body.edits.map((e: { id: string }) => e.id), [editId]);
  t.is((await top()).token, " Berlin");
});

test.serial("an edit job cancelled after its first of two edits applies neither", async (t) => {
  const requests = [
    { prompt: "{} is located in the city of", subject: "Tower of Deathproust", targetNew: "Paris" },
    { prompt: "{} is located in the country of", subject: SUBJECT, targetNew: "Japan" },
  ];
  const id = (await call(base, "POST", "/edits", { requests })).body.id as string;
  let cancelled = false;
  const seen = await events(base, id, (e) => {
    if (e.event === "progress" && e.data.phase === "edits" && !cancelled) {
      cancelled = true;
      void call(base, "DELETE", `/jobs/${id}`);
    }
  });
  t.true(cancelled);
  t.is(seen.at(-2)!.data.code, "ERR_ABORTED");
  t.deepEqual((await call(base, "GET", "/edits")).body.edits.map((e: { id: string }) => e.id), [editId]);
});

test.serial("after a restart on the same state directory (now with two workers), edits and finished jobs come back", async (t) => {
  const jobs = (await call(base, "GET", "/jobs")).body.jobs;
  await service.shutdown(1000);
  service = await Service.start({ models: [{ dir: TINYFACTS, workers: 2 }], port: 0, stateDir, limits: LIMITS });
  base = service.url;
  t.is((await call(base, "GET", "/models")).body.models[0].workers, 2);
  t.deepEqual((await call(base, "GET", "/edits")).body.edits.map((e: { id: string }) => e.id), [editId]);
  // concurrent requests run on both workers, and both hold the restored edit
  const tops = await Promise.all(Array.from({ length: 6 }, () => call(base, "POST", "/predict", { prompts: [PROMPT], topK: 1 })));
  t.deepEqual(tops.map((a) => a.body.predictions[0][0].token), Array(6).fill(" Berlin"));
  const again = (await call(base, "GET", "/jobs")).body.jobs;
  t.deepEqual(again.map((j: { id: string; state: string }) => [j.id, j.state]), jobs.map((j: { id: string; state: string }) => [j.id, j.state]));
  const edit = jobs.find((j: { kind: string }) => j.kind === "edits");
  t.is((await call(base, "GET", `/jobs/${edit.id}`)).body.result.edits[0].id, editId);
});

test("with a token, every route but /health needs it; a non-loopback address needs one; a job past its time limit fails with ERR_JOB_TIMEOUT", async (t) => {
  const err = await t.throwsAsync(Service.start({ models: [{ dir: "/nonexistent" }], host: "0.0.0.0", port: 0 }));
  t.is((err as { code?: string }).code, "ERR_ARGUMENT");
  t.regex(err!.message, /refusing to listen on 0\.0\.0\.0 without a bearer token/);
  const secured = await Service.start({ models: [{ dir: TINYFACTS }], port: 0, token: "s3cret", limits: { jobSeconds: 0.3 } });
  t.teardown(() => secured.shutdown(0));
  const url = secured.url;
  t.is((await call(url, "GET", "/health")).status, 200);
  for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "s3cret" }] as Record<string, string>[]) {
    const a = await call(url, "GET", "/models", undefined, headers);
    t.is(a.status, 401);
    t.is(a.body.error.code, "ERR_UNAUTHORIZED");
  }
  t.is((await call(url, "POST", "/predict", { prompts: [PROMPT] })).status, 401);
  const auth = { authorization: "Bearer s3cret" };
  t.is((await call(url, "GET", "/models", undefined, auth)).status, 200);
  const id = (await call(url, "POST", "/trace", { prompt: PROMPT, subject: SUBJECT, kinds: ["resid", "mlp", "attn"], samples: 50 }, auth)).body.id;
  const job = await finished(url, id, auth);
  t.is(job.body.state, "failed");
  t.is(job.body.error.code, "ERR_JOB_TIMEOUT");
});
