// Request and response schemas of every route, in TypeBox: fastify validates requests against
// them, serialises responses with them, derives the handlers' TypeScript types from them, and
// @fastify/swagger publishes them at /openapi.json. Request objects reject unknown fields, so a
// misspelt option fails instead of being ignored.
import { Type, type Static, type TSchema } from "typebox";

const strict = { additionalProperties: false } as const;

export const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) }, { description: "every failure: the RomeError code and what to do" });

const Text = Type.String({ minLength: 1 });
const ModelName = Type.Optional(Type.String({ description: "a served model's name (GET /models); default: the first" }));
const EditIds = Type.Optional(Type.Array(Type.String(), { description: "ids of applied edits to have enabled for this request only (default: the model's enabled edits)" }));
const Kind = Type.Union([Type.Literal("resid"), Type.Literal("mlp"), Type.Literal("attn")]);
const Noise = Type.Optional(Type.Number({ exclusiveMinimum: 0, description: "Gaussian noise level; default 3 × std of the subjects' embeddings" }));

export const Prediction = Type.Object({ token: Type.String(), id: Type.Integer(), prob: Type.Number() });

export const PredictBody = Type.Object({
  model: ModelName,
  prompts: Type.Array(Text, { minItems: 1 }),
  topK: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 5 })),
  edits: EditIds,
}, strict);
export const PredictReply = Type.Object({ predictions: Type.Array(Type.Array(Prediction)) });

export const LogprobBody = Type.Object({
  model: ModelName,
  pairs: Type.Array(Type.Object({ prompt: Text, target: Text }, strict), { minItems: 1 }),
  edits: EditIds,
}, strict);
export const LogprobReply = Type.Object({
  results: Type.Array(Type.Object({
    sum: Type.Number(),
    mean: Type.Number(),
    tokens: Type.Array(Type.Object({ id: Type.Integer(), token: Type.String(), logprob: Type.Number(), top1: Type.Boolean() })),
  })),
});

export const GenerateBody = Type.Object({
  model: ModelName,
  prompt: Text,
  maxTokens: Type.Optional(Type.Integer({ minimum: 0, default: 20 })),
  topK: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: "1 = greedy (default)" })),
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 })),
  edits: EditIds,
}, strict);
export const GenerateReply = Type.Object({ text: Type.String() });

export const TraceBody = Type.Object({
  model: ModelName,
  prompt: Text,
  subject: Text,
  kinds: Type.Optional(Type.Array(Kind, { minItems: 1, maxItems: 3, uniqueItems: true, default: ["resid"] })),
  samples: Type.Optional(Type.Integer({ minimum: 1, default: 10 })),
  window: Type.Optional(Type.Integer({ minimum: 1, default: 10 })),
  noise: Noise,
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 })),
  strategy: Type.Optional(Type.Union([Type.Literal("minimal"), Type.Literal("naive")])),
  edits: EditIds,
}, strict);

export const TraceDatasetBody = Type.Object({
  model: ModelName,
  facts: Type.Array(Type.Object({
    known_id: Type.Optional(Type.Integer({ minimum: 0 })),
    prompt: Text,
    subject: Text,
    attribute: Type.Optional(Type.String({ description: "the expected answer; averages skip facts the model gets wrong" })),
  }, strict), { minItems: 1 }),
  kinds: Type.Optional(Type.Array(Kind, { minItems: 1, maxItems: 3, uniqueItems: true })),
  samples: Type.Optional(Type.Integer({ minimum: 1, default: 10 })),
  window: Type.Optional(Type.Integer({ minimum: 1, default: 10 })),
  noise: Noise,
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 })),
  edits: EditIds,
}, strict);

export const EditRequest = Type.Object({
  prompt: Type.String({ pattern: "\\{\\}", description: "the prompt with {} where the subject goes" }),
  subject: Text,
  targetNew: Text,
  targetTrue: Type.Optional(Text),
}, strict);
export const EditsBody = Type.Object({
  model: ModelName,
  requests: Type.Array(EditRequest, { minItems: 1 }),
  layer: Type.Optional(Type.Integer({ minimum: 0 })),
  form: Type.Optional(Type.Union([Type.Literal("r-rome"), Type.Literal("reference")])),
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 })),
}, strict);

export const EvaluateBody = Type.Object({
  model: ModelName,
  records: Type.Array(Type.Unknown(), { minItems: 1, description: "CounterFact records" }),
  edits: EditIds,
}, strict);

export const JobRecord = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  model: Type.String(),
  state: Type.Union(["queued", "running", "succeeded", "failed", "cancelled"].map((s) => Type.Literal(s))),
  created: Type.String(),
  started: Type.Optional(Type.String()),
  finished: Type.Optional(Type.String()),
  progress: Type.Optional(Type.Object({ phase: Type.String(), done: Type.Number(), total: Type.Number() })),
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});
export const Accepted = Type.Object({ id: Type.String(), state: Type.String(), links: Type.Object({ self: Type.String(), events: Type.String() }) });
export const JobId = Type.Object({ id: Type.String() });

export const EditSummary = Type.Object({
  id: Type.String(),
  model: Type.String(),
  layer: Type.Integer(),
  layers: Type.Array(Type.Integer()),
  rank: Type.Integer(),
  enabled: Type.Boolean(),
  norm: Type.Number(),
  info: Type.Optional(Type.Unknown()),
});
export const EditList = Type.Object({ edits: Type.Array(EditSummary) });
export const ImportQuery = Type.Object({
  model: ModelName,
  force: Type.Optional(Type.Boolean({ description: "apply edits made for another model" })),
}, strict);

/** Responses of a route: the given ones plus the error body for 4xx and 5xx. */
export function replies(ok: Record<number, TSchema>): Record<string, TSchema> {
  return { ...ok, "4xx": ErrorBody, "5xx": ErrorBody };
}

export type PredictBody = Static<typeof PredictBody>;
export type TraceBody = Static<typeof TraceBody>;
