// Where the queue lives: a Redis URL (redis:// or rediss:// for TLS, with an optional user and
// password) and a prefix that namespaces every key, so that several teams share one Redis without
// seeing each other's jobs. Checked once, before anything waits on the server.
import { Redis, type RedisOptions } from "ioredis";
import { RomeError } from "../errors.js";

/** How to reach the queue. */
export interface QueueConnectionOptions {
  /** `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS. */
  redis: string;
  /** Namespace of every key (BullMQ's prefix): letters, digits, `_`, `-`, `.`. Default "rome". */
  prefix?: string;
}

/** A checked connection: what BullMQ's classes take, and the URL safe to print. */
export interface QueueConnection {
  /** Options for BullMQ's Queue, Worker, FlowProducer and QueueEvents (each opens its own connections). */
  connection: { url: string; maxRetriesPerRequest: null };
  prefix: string;
  /** The URL with its password masked, for messages. */
  display: string;
}

export const DEFAULT_PREFIX = "rome";

export function queueConnection(options: QueueConnectionOptions): QueueConnection {
  const { redis, prefix = DEFAULT_PREFIX } = options;
  let url: URL;
  try {
    url = new URL(redis);
  } catch {
    throw new RomeError("ERR_ARGUMENT", `--redis ${JSON.stringify(redis)} is not a URL; use redis://host:6379 (or rediss://host:6380 for TLS, redis://:password@host:6379 with a password)`);
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new RomeError("ERR_ARGUMENT", `--redis must start with redis:// or rediss:// (TLS), received ${url.protocol}//`);
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) {
    throw new RomeError("ERR_ARGUMENT", `--prefix must be 1 to 64 letters, digits, '_', '-' or '.', received ${JSON.stringify(prefix)}`);
  }
  const display = url.password ? redis.replace(`:${url.password}@`, ":***@") : redis;
  // BullMQ's workers block on Redis and must retry forever (maxRetriesPerRequest: null).
  return { connection: { url: redis, maxRetriesPerRequest: null }, prefix, display };
}

/** Opens a plain client (for pings, cancellation messages and keys of our own). */
export function openRedis(conn: QueueConnection, options: RedisOptions = {}): Redis {
  return new Redis(conn.connection.url, { maxRetriesPerRequest: null, ...options });
}

/** Fails with ERR_QUEUE, saying what to do, unless Redis answers within `timeoutMs`. */
export async function checkReachable(conn: QueueConnection, timeoutMs = 5000): Promise<void> {
  const r = openRedis(conn, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 1, retryStrategy: () => null });
  r.on("error", () => {}); // reported by connect() below
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    throw new RomeError("ERR_QUEUE", `could not reach Redis at ${conn.display}: ${(e as Error).message}; start redis-server there, or check --redis (host, port, password, rediss:// for TLS)`, { cause: e });
  } finally {
    r.disconnect();
  }
}
