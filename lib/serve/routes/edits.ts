// The edit routes: list the applied edits, undo one, export one as a factors file, and import a
// factors file (applied to the model, and stored when the service has a state directory).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { RomeError } from "../../errors.js";
import { exportEdits, loadEdits } from "../../host/api.js";
import type { ServiceContext } from "../context.js";
import { EditList, EditSummary, ImportQuery, JobId, replies } from "../schemas.js";
import { EDIT_ID } from "../state.js";
import { newEditId } from "../work.js";

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function inTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "rome-serve-"));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function editRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addContentTypeParser("application/octet-stream", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  r.get("/edits", {
    schema: { summary: "Applied edits of every model (or of ?model=)", querystring: Type.Object({ model: Type.Optional(Type.String()) }), response: replies({ 200: EditList }) },
  }, async (request) => {
    const models = request.query.model === undefined ? [...ctx.pool.models.values()] : [ctx.pool.get(request.query.model)];
    return { edits: models.flatMap((m) => m.list().map((e) => ({ ...e, model: m.name }))) };
  });

  r.delete("/edits/:id", {
    schema: { summary: "Undoes an edit: the model answers exactly as before it", params: JobId, response: replies({ 200: EditSummary }) },
  }, async (request) => {
    const model = ctx.pool.holding(request.params.id);
    const summary = { ...model.list().find((e) => e.id === request.params.id)!, model: model.name };
    model.undo(request.params.id);
    await ctx.store?.removeEdit(model, request.params.id);
    return summary;
  });

  r.get("/edits/:id/export", {
    schema: {
      summary: "An edit's factors as a safetensors file (POST /edits/import takes it back)",
      params: JobId,
      produces: ["application/octet-stream"],
      response: replies({ 200: Type.String({ description: "safetensors bytes" }) }),
    },
  }, async (request, reply) => {
    const model = ctx.pool.holding(request.params.id);
    const bytes = await inTemp(async (dir) => {
      await exportEdits(model.primary, join(dir, "edit.safetensors"), [request.params.id]);
      return readFileSync(join(dir, "edit.safetensors"));
    });
    return reply.type("application/octet-stream").header("content-disposition", `attachment; filename="${request.params.id}.safetensors"`).send(bytes);
  });

  r.post("/edits/import", {
    schema: {
      summary: "Applies the edits of a factors file (body: application/octet-stream); ids are kept when free",
      querystring: ImportQuery,
      consumes: ["application/octet-stream"],
      response: replies({ 201: EditList }),
    },
  }, async (request, reply) => {
    const model = ctx.pool.get(request.query.model);
    const body = request.body;
    if (!Buffer.isBuffer(body) || body.length === 0) throw new RomeError("ERR_VALIDATION", "send the edits file as the body, with Content-Type: application/octet-stream");
    const edits = await inTemp(async (dir) => {
      writeFileSync(join(dir, "import.safetensors"), body);
      return loadEdits(join(dir, "import.safetensors"), model.primary, { force: request.query.force ?? false });
    });
    const ids = edits.map((e) => model.apply({ ...e, id: EDIT_ID.test(e.id) && !model.has(e.id) ? e.id : newEditId() }));
    if (ctx.store) await Promise.all(ids.map((id) => ctx.store!.saveEdit(model, id)));
    void reply.code(201);
    return { edits: model.list().filter((e) => ids.includes(e.id)).map((e) => ({ ...e, model: model.name })) };
  });
}
