// A running service: loads the models, restores the state directory (edits, finished jobs),
// listens, and shuts down in order: stop accepting, let running jobs finish within the grace
// period, cancel the rest, write what remains, close the sockets and free the models.
import type { FastifyInstance } from "fastify";
import { buildApp } from "./app.js";
import { checkExposure } from "./auth.js";
import { ServiceContext } from "./context.js";
import { JobRegistry } from "./jobs.js";
import { DEFAULT_LIMITS, type Limits } from "./limits.js";
import { ModelPool, type ModelSpec } from "./models.js";
import { StateStore } from "./state.js";

export interface ServiceOptions {
  models: readonly ModelSpec[];
  /** Default 127.0.0.1; any other address needs `token`. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  token?: string;
  /** Where edits and finished jobs persist; none: they live in memory only. */
  stateDir?: string;
  limits?: Partial<Limits>;
  logger?: boolean;
}

export class Service {
  private closing?: Promise<void>;

  private constructor(readonly app: FastifyInstance, readonly ctx: ServiceContext, readonly url: string) {}

  static async start(options: ServiceOptions): Promise<Service> {
    const host = options.host ?? "127.0.0.1";
    checkExposure(host, options.token);
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    const store = options.stateDir ? new StateStore(options.stateDir) : undefined;
    const pool = await ModelPool.load(options.models);
    try {
      const registry = new JobRegistry(limits, store);
      if (store) {
        registry.restore(store.loadJobs());
        await store.restoreEdits(pool);
      }
      const ctx = new ServiceContext(pool, registry, limits, store);
      const app = await buildApp(ctx, { token: options.token, logger: options.logger });
      const address = await app.listen({ host, port: options.port ?? 8080 });
      return new Service(app, ctx, address);
    } catch (e) {
      await pool.dispose();
      throw e;
    }
  }

  /**
   * Stops accepting requests and jobs, gives running jobs `graceMs` to finish, cancels the rest,
   * flushes the state directory, closes every connection and frees the models. Idempotent.
   */
  shutdown(graceMs = 30_000): Promise<void> {
    this.closing ??= (async () => {
      const closed = this.app.close(); // stops listening now; resolves once open requests (event streams included) end
      await this.ctx.registry.shutdown(graceMs);
      await this.ctx.store?.flush();
      await closed;
      await this.ctx.pool.dispose();
    })();
    return this.closing;
  }
}
