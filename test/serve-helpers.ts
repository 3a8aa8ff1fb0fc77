// Helpers of the service tests: JSON requests and server-sent events through undici's request
// (undici 7: the 8.x line needs Node ≥ 22.19, and rome-node supports 20), against a real server
// on a loopback port.
import { request } from "undici";

export interface Answer<T = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  status: number;
  headers: Record<string, string>;
  body: T;
}

/** Sends `body` as JSON (or raw bytes) and parses a JSON answer (bytes otherwise). */
export async function call(base: string, method: "GET" | "POST" | "DELETE", path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const raw = body instanceof Uint8Array;
  const res = await request(base + path, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": raw ? "application/octet-stream" : "application/json" }), ...headers },
    body: body === undefined ? undefined : raw ? Buffer.from(body) : JSON.stringify(body),
  });
  const flat = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v ?? ""]));
  const parsed = (flat["content-type"] ?? "").includes("json") ? await res.body.json() : Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: flat, body: parsed };
}

export interface SseEvent { event: string; data: any } // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Reads a job's event stream, calling `onEvent` for each event as it arrives, until the server
 * ends the stream; returns every event.
 */
export async function events(base: string, id: string, onEvent: (e: SseEvent) => void = () => {}, headers: Record<string, string> = {}): Promise<SseEvent[]> {
  const res = await request(`${base}/jobs/${id}/events`, { headers });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`events: status ${res.statusCode}`);
  }
  const out: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (block.startsWith(":")) continue;
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null");
      out.push({ event, data });
      onEvent({ event, data });
    }
  }
  return out;
}

/** Polls GET /jobs/:id until the job has finished. */
export async function finished(base: string, id: string, headers: Record<string, string> = {}): Promise<Answer> {
  for (;;) {
    const a = await call(base, "GET", `/jobs/${id}`, undefined, headers);
    if (!["queued", "running"].includes(a.body.state)) return a;
    await new Promise((r) => setTimeout(r, 50));
  }
}
