// GET /jobs/:id/events as server-sent events, written straight on the socket: `state` (the record,
// first and at each change), `progress` ({ phase, done, total }), then `result` or `error`, then
// `end`, and the stream closes. A finished job answers its last state, its outcome and `end` at
// once. A comment line every 15 s keeps proxies from closing a quiet stream.
import type { FastifyReply } from "fastify";
import type { JobEvent, JobRegistry } from "./jobs.js";
import { FINISHED } from "./jobs.js";

const HEARTBEAT_MS = 15_000;

export function streamJob(registry: JobRegistry, id: string, reply: FastifyReply): void {
  const record = registry.get(id); // throws ERR_NOT_FOUND before the stream starts
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  send("state", { ...record, result: undefined });
  if (FINISHED.includes(record.state)) {
    if (record.error) send("error", record.error);
    else send("result", record.result);
    send("end", {});
    res.end();
    return;
  }
  const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
  const stop = () => {
    clearInterval(heartbeat);
    unsubscribe();
  };
  const unsubscribe = registry.subscribe(id, (e: JobEvent) => {
    if (e.type === "state") send("state", e.job);
    else if (e.type === "progress") send("progress", e.progress);
    else {
      send(e.type, e.type === "result" ? e.result : e.error);
      send("end", {});
      stop();
      res.end();
    }
  });
  res.on("close", stop);
}
