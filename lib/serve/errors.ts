// How the service answers a failure: always `{ error: { code, message } }`, with the RomeError's
// code. The caller's mistakes are 4xx (the status follows from the code); anything else is a fault,
// 500, logged with its stack.
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { RomeError, type RomeErrorCode } from "../errors.js";

const STATUS: Partial<Record<RomeErrorCode, number>> = {
  ERR_UNAUTHORIZED: 401,
  ERR_NOT_FOUND: 404,
  ERR_EDIT_UNKNOWN: 404,
  ERR_JOB_STATE: 409,
  ERR_EDIT_CONFLICT: 409,
  ERR_BODY_TOO_LARGE: 413,
  ERR_QUEUE_FULL: 429,
  ERR_SHUTTING_DOWN: 503,
  ERR_WORKER: 503,
  ERR_ONNX: 500,
  ERR_NATIVE_LOAD: 500,
  ERR_CUDA: 500,
  ERR_IO: 500,
};

/** The HTTP status of a RomeError: its own entry above, else 400 (every other code is about the input). */
export function statusOf(code: RomeErrorCode): number {
  return STATUS[code] ?? 400;
}

export interface ErrorBody {
  error: { code: string; message: string };
}

/** The JSON body of an error, as every route answers it. */
export function errorBody(e: unknown): ErrorBody {
  if (e instanceof RomeError) return { error: { code: e.code, message: e.message } };
  return { error: { code: "ERR_INTERNAL", message: "internal error; see the server's log" } };
}

/** Fastify's error handler: schema failures, body limits, RomeErrors, and faults. */
export function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  const fe = error as FastifyError;
  let e: unknown = error;
  if (fe.validation) e = new RomeError("ERR_VALIDATION", validationMessage(fe));
  else if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE") e = new RomeError("ERR_BODY_TOO_LARGE", `the request body is larger than the server's limit (--max-body-bytes); send less`);
  else if (fe.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") e = new RomeError("ERR_VALIDATION", `unsupported content type ${JSON.stringify(request.headers["content-type"] ?? "")}; send application/json`);
  else if (fe.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || fe.code === "FST_ERR_CTP_INVALID_JSON_BODY" || (fe.statusCode === 400 && !(error instanceof RomeError))) e = new RomeError("ERR_VALIDATION", fe.message);
  const status = e instanceof RomeError ? statusOf(e.code) : 500;
  if (status >= 500) request.log.error({ err: error }, "request failed");
  void reply.code(status).send(errorBody(e));
}

/** Each schema failure as `body.prompts.0 must NOT have fewer than 1 characters`, naming unknown fields. */
function validationMessage(fe: FastifyError): string {
  return fe.validation!.map((v) => {
    const where = `${fe.validationContext ?? "request"}${v.instancePath.replaceAll("/", ".")}`;
    const extra = (v.params as { additionalProperty?: string }).additionalProperty;
    const allowed = (v.params as { allowedValues?: unknown[] }).allowedValues;
    return `${where} ${v.message ?? "is invalid"}${extra ? `: '${extra}'` : ""}${allowed ? `: ${allowed.map((a) => JSON.stringify(a)).join(", ")}` : ""}`;
  }).join("; ");
}
