// The fastify application of the service: error format, bearer token, OpenAPI document, and the
// routes by area. Building it does no model work: the models, registry and store come in the context.
import Fastify, { type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import { RomeError } from "../errors.js";
import { bearerAuth } from "./auth.js";
import type { ServiceContext } from "./context.js";
import { handleError } from "./errors.js";
import { directRoutes } from "./routes/direct.js";
import { editRoutes } from "./routes/edits.js";
import { jobRoutes } from "./routes/jobs.js";

export interface AppOptions {
  /** Bearer token required on every route but /health. */
  token?: string;
  /** fastify's logger option (default off). */
  logger?: boolean;
}

export async function buildApp(ctx: ServiceContext, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: ctx.limits.bodyBytes,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: false } },
  });
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request) => {
    throw new RomeError("ERR_NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}; see GET /openapi.json`);
  });
  if (options.token) app.addHook("onRequest", bearerAuth(options.token));
  await app.register(swagger, {
    openapi: {
      info: { title: "rome-node service", version: "1", description: "Predictions, causal traces, ROME edits and evaluations over loaded models" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: options.token ? [{ bearer: [] }] : [],
    },
  });
  directRoutes(app, ctx);
  jobRoutes(app, ctx);
  editRoutes(app, ctx);
  app.get("/openapi.json", { schema: { summary: "This OpenAPI document" } }, async () => app.swagger());
  return app;
}
