// The routes answered at once: liveness, the served models, and predictions, log-probabilities
// and generations, each optionally with its own edit set. /predict goes through the model's
// batcher; a /generate whose client disconnects is aborted.
import type { FastifyInstance, FastifyReply } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { ServiceContext } from "../context.js";
import { checkCount, checkGenerateTokens, checkPromptTokens } from "../checks.js";
import { EditSummary, GenerateBody, GenerateReply, LogprobBody, LogprobReply, PredictBody, PredictReply, replies } from "../schemas.js";

/** An AbortSignal that fires when the request's client goes away before the answer. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort(new Error("the client disconnected"));
  });
  return controller.signal;
}

export function directRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get("/health", {
    schema: {
      summary: "Liveness: answers without model work (no token needed)",
      response: replies({ 200: Type.Object({ status: Type.Literal("ok"), uptime: Type.Number(), jobs: Type.Object({ running: Type.Integer(), queued: Type.Integer() }) }) }),
    },
  }, async () => ({ status: "ok" as const, uptime: process.uptime(), jobs: ctx.registry.counts() }));

  r.get("/models", {
    schema: {
      summary: "The served models: config, fingerprint, workers and applied edits",
      response: replies({
        200: Type.Object({
          models: Type.Array(Type.Object({
            name: Type.String(), dir: Type.String(), fingerprint: Type.String(), workers: Type.Integer(),
            config: Type.Record(Type.String(), Type.Unknown()), edits: Type.Array(EditSummary),
          })),
        }),
      }),
    },
  }, async () => ({
    models: [...ctx.pool.models.values()].map((m) => ({
      name: m.name, dir: m.dir, fingerprint: m.primary.fingerprint, workers: m.replicas.length,
      config: { ...m.primary.config } as Record<string, unknown>,
      edits: m.list().map((e) => ({ ...e, model: m.name })),
    })),
  }));

  r.post("/predict", {
    schema: { summary: "Top-k next tokens after each prompt (concurrent requests are batched together)", body: PredictBody, response: replies({ 200: PredictReply }) },
  }, async (request) => {
    const b = request.body;
    const model = ctx.pool.get(b.model);
    checkCount("prompts", b.prompts.length, ctx.limits.prompts, "ERR_VALIDATION", "--max-prompts");
    model.checkEdits(b.edits);
    await checkPromptTokens(model, b.prompts, ctx.limits);
    return { predictions: await ctx.batcher(model).predict(b.prompts, b.topK ?? 5, b.edits) };
  });

  r.post("/logprob", {
    schema: { summary: "Teacher-forced log-probability of each target after its prompt", body: LogprobBody, response: replies({ 200: LogprobReply }) },
  }, async (request) => {
    const b = request.body;
    const model = ctx.pool.get(b.model);
    checkCount("pairs", b.pairs.length, ctx.limits.prompts, "ERR_VALIDATION", "--max-prompts");
    model.checkEdits(b.edits);
    await checkPromptTokens(model, b.pairs.map((p) => p.prompt + p.target), ctx.limits, "pair");
    return { results: await model.run((m) => m.logprob(b.pairs, { ...(b.edits ? { edits: b.edits } : {}) })) };
  });

  r.post("/generate", {
    schema: { summary: "A continuation of the prompt (greedy by default)", body: GenerateBody, response: replies({ 200: GenerateReply }) },
  }, async (request, reply) => {
    const b = request.body;
    const model = ctx.pool.get(b.model);
    const maxTokens = b.maxTokens ?? 20;
    checkGenerateTokens(maxTokens, ctx.limits);
    model.checkEdits(b.edits);
    await checkPromptTokens(model, [b.prompt], ctx.limits);
    const signal = clientGone(reply);
    const text = await model.run((m) => m.generate(b.prompt, { maxTokens, topK: b.topK, seed: b.seed, ...(b.edits ? { edits: b.edits } : {}), signal }));
    return { text };
  });
}
