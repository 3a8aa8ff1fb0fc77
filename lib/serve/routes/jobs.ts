// The job routes: POST /trace, /trace-dataset, /edits and /evaluate answer 202 with the job's id
// once its input has passed every check; GET /jobs, GET /jobs/:id, GET /jobs/:id/events (SSE) and
// DELETE /jobs/:id (cancel) follow it.
import type { FastifyInstance, FastifyReply } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { RomeError } from "../../errors.js";
import type { ServiceContext } from "../context.js";
import { checkCount, checkPromptTokens, checkSamples, checkSubject } from "../checks.js";
import type { JobKind, JobRecord as Job, JobWork } from "../jobs.js";
import { Accepted, EditsBody, EvaluateBody, JobId, JobRecord, replies, TraceBody, TraceDatasetBody } from "../schemas.js";
import { streamJob } from "../sse.js";
import { editsWork, evaluateWork, traceDatasetWork, traceWork } from "../work.js";

export function jobRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { limits } = ctx;

  /** Submits a job and answers 202, or 429 with Retry-After when the queue is full. */
  const submit = (reply: FastifyReply, kind: JobKind, model: string, work: JobWork) => {
    let job: Job;
    try {
      job = ctx.registry.submit(kind, model, work);
    } catch (e) {
      if (e instanceof RomeError && e.code === "ERR_QUEUE_FULL") void reply.header("retry-after", String((e as RomeError & { retryAfter: number }).retryAfter));
      throw e;
    }
    void reply.code(202).header("location", `/jobs/${job.id}`);
    return { id: job.id, state: job.state, links: { self: `/jobs/${job.id}`, events: `/jobs/${job.id}/events` } };
  };
  const accepted = replies({ 202: Accepted });

  r.post("/trace", { schema: { summary: "Causal trace of one fact (a job)", body: TraceBody, response: accepted } }, async (request, reply) => {
    const b = request.body;
    const model = ctx.pool.get(b.model);
    checkSamples(b.samples, limits);
    checkSubject(b.prompt, b.subject);
    model.checkEdits(b.edits);
    await checkPromptTokens(model, [b.prompt], limits);
    return submit(reply, "trace", model.name, traceWork(model, b));
  });

  r.post("/trace-dataset", { schema: { summary: "Causal traces of many facts and their averaged effects (a job)", body: TraceDatasetBody, response: accepted } }, async (request, reply) => {
    const b = request.body;
    const model = ctx.pool.get(b.model);
    checkCount("facts", b.facts.length, limits.datasetSize, "ERR_DATASET_TOO_LARGE", "--max-dataset");
    checkSamples(b.samples, limits);
    b.facts.forEach((f, i) => checkSubject(f.prompt, f.subject, `the prompt of fact ${i}`));
    model.checkEdits(b.edits);
    await checkPromptTokens(model, b.facts.map((f) => f.prompt), limits, "fact");
    return submit(reply, "trace-dataset", model.name, traceDatasetWork(model, b));
  });

  r.post("/edits", { schema: { summary: "ROME edits of one or more requests (a job; its result lists the new edits)", body: EditsBody, response: accepted } }, async (request, reply) => {
    const b = request.body;
    const model = ctx.pool.get(b.model);
    checkCount("requests", b.requests.length, limits.datasetSize, "ERR_DATASET_TOO_LARGE", "--max-dataset");
    if (b.layer !== undefined && b.layer >= model.primary.config.nLayer) throw new RomeError("ERR_ARGUMENT", `layer ${b.layer} is outside the model's layers 0–${model.primary.config.nLayer - 1}`);
    b.requests.forEach((q, i) => {
      if (q.prompt.split("{}").length !== 2) throw new RomeError("ERR_ARGUMENT", `request ${i}: the prompt must contain "{}" exactly once, where the subject goes`);
    });
    await checkPromptTokens(model, b.requests.map((q) => q.prompt.replace("{}", q.subject)), limits, "request");
    return submit(reply, "edits", model.name, editsWork(model, b, ctx.store));
  });

  r.post("/evaluate", { schema: { summary: "CounterFact metrics of records on the model (a job)", body: EvaluateBody, response: accepted } }, async (request, reply) => {
    const b = request.body;
    const model = ctx.pool.get(b.model);
    checkCount("records", b.records.length, limits.datasetSize, "ERR_DATASET_TOO_LARGE", "--max-dataset");
    model.checkEdits(b.edits);
    return submit(reply, "evaluate", model.name, evaluateWork(model, b));
  });

  r.get("/jobs", { schema: { summary: "Every job kept, without results", response: replies({ 200: Type.Object({ jobs: Type.Array(JobRecord) }) }) } },
    async () => ({ jobs: ctx.registry.list().map(({ result: _r, ...j }) => j) }));

  r.get("/jobs/:id", { schema: { summary: "A job: state, progress, and its result or error once finished", params: JobId, response: replies({ 200: JobRecord }) } },
    async (request) => ctx.registry.get(request.params.id));

  r.get("/jobs/:id/events", {
    schema: {
      summary: "A job's events as server-sent events: state, progress, then result or error, then end",
      params: JobId,
      produces: ["text/event-stream"],
      response: replies({ 200: Type.String({ description: "text/event-stream" }) }),
    },
  }, async (request, reply) => {
    streamJob(ctx.registry, request.params.id, reply);
    return reply;
  });

  r.delete("/jobs/:id", { schema: { summary: "Cancels a queued or running job (nothing half-applied)", params: JobId, response: replies({ 202: JobRecord }) } },
    async (request, reply) => {
      const job = ctx.registry.cancel(request.params.id);
      void reply.code(202);
      return job;
    });
}
