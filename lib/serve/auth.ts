// The bearer token: when the service has one, every route but /health needs
// `Authorization: Bearer <token>`; compared in constant time. A service on a non-loopback address
// must have one (checkExposure), so nothing is reachable from the network unauthenticated.
import { timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { FastifyReply, FastifyRequest } from "fastify";
import { RomeError } from "../errors.js";

/** Routes answered without the token. */
const OPEN = new Set(["/health"]);

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1" || host === "[::1]";
}

/** Refuses to serve a non-loopback address without a token. */
export function checkExposure(host: string, token: string | undefined): void {
  if (!isLoopback(host) && !token) {
    throw new RomeError("ERR_ARGUMENT", `refusing to listen on ${host} without a bearer token: anyone who can reach it could edit the model; pass --token (or ROME_NODE_TOKEN), or bind to 127.0.0.1`);
  }
}

/** An onRequest hook requiring `token` on every route but /health. */
export function bearerAuth(token: string): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const expected = Buffer.from(`Bearer ${token}`);
  return async (request) => {
    if (OPEN.has(request.url.split("?")[0]!)) return;
    const given = Buffer.from(request.headers.authorization ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new RomeError("ERR_UNAUTHORIZED", "this server requires Authorization: Bearer <token> (the --token it was started with)");
    }
  };
}
