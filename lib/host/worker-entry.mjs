// The entry of a hosted model's worker thread, in plain JavaScript so that it needs no module loader
// hooks of its own: the worker inherits none on Node 20, and tsx's hooks are registered here only
// when the library runs from TypeScript sources (workerData.tsx is then set), never when installed.
// It lives in lib/ so that both lib/host/*.ts and dist/host/*.js find it at ../../lib/host/.
import { workerData } from "node:worker_threads";

if (workerData.tsx) {
  const { register } = await import(workerData.tsx);
  register();
}
const { serve } = await import(workerData.module);
await serve();
