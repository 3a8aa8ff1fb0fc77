// Lab: what creating the GPT-2-XL head session (the (V, D) unembedding in one Gemm) costs, with the
// weight serialised into the graph (how segments were built before) against ONNX external data
// that onnxruntime maps from the checkpoint itself, with and without pre-packing.
//   node --expose-gc --import=tsx scripts/lab-head-session.ts DIR inline|external 0|1
// DIR: a GPT-2 checkpoint with an f32 `transformer.wte.weight` (bench host writes one: $TMPDIR/rome-node-host-bench/xl).
// Prints creation seconds (serialisation included), peak and resident memory over the unembedding's size
// (from just before serialisation), and ms per run of 4 rows.
import { openSync, readFileSync, readSync } from "node:fs";
import ort from "onnxruntime-node";
import { attr, GraphBuilder } from "../lib/graph/builder.js";

const [dir, mode = "external", prepack = "0"] = process.argv.slice(2);
if (!dir || !["inline", "external"].includes(mode)) throw new Error("usage: lab-head-session.ts DIR inline|external 0|1");
const mem = () => {
  const s = readFileSync("/proc/self/status", "utf8");
  return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)![1]) * 1024, hwm: Number(/VmHWM:\s+(\d+)/.exec(s)![1]) * 1024 };
};
const fd = openSync(`${dir}/model.safetensors`, "r");
const len = Buffer.alloc(8);
readSync(fd, len, 0, 8, 0);
const headerBytes = Number(len.readBigUInt64LE(0));
const header = Buffer.alloc(headerBytes);
readSync(fd, header, 0, headerBytes, 8);
const entry = JSON.parse(header.toString("utf8"))["transformer.wte.weight"] as { shape: [number, number]; data_offsets: [number, number] };
const [V, D] = entry.shape;
const U = V * D * 4;
const offset = 8 + headerBytes + entry.data_offsets[0];
const b = new GraphBuilder("head");
const x = b.input("x", "float32", ["N", D]);
let w: string;
if (mode === "external") {
  w = b.externalInitializer("wte", [V, D], { folder: dir, location: "model.safetensors", offset, length: U });
} else {
  const data = new Float32Array(V * D); // (V, D)
  readSync(fd, new Uint8Array(data.buffer), 0, U, offset);
  w = b.initializer("wte", [V, D], data);
}
b.output("logits", b.op("Gemm", [x, w], { transB: attr.int(1) }), "float32", ["N", V]);
global.gc?.();
const before = mem(); // the inline weight's JavaScript copy is counted from here on, as the serialised graph is
const t0 = performance.now();
const session = await ort.InferenceSession.create(b.toBytes(), {
  graphOptimizationLevel: "all", intraOpNumThreads: 1,
  extra: { session: { ...(prepack === "1" ? {} : { disable_prepacking: "1" }), ...(mode === "external" ? { model_external_initializers_file_folder_path: dir } : {}) } },
});
const createSeconds = (performance.now() - t0) / 1000;
global.gc?.();
const created = mem();
const t1 = performance.now();
for (let i = 0; i < 10; i++) await session.run({ x: new ort.Tensor("float32", new Float32Array(4 * D).fill(1), [4, D]) }, ["logits"]);
const msPerRun = (performance.now() - t1) / 10;
const ran = mem();
console.log(JSON.stringify({
  mode, prepacking: prepack === "1", createSeconds, msPerRun,
  peakOverUnembedding: (ran.hwm - before.rss) / U, residentAfterCreate: (created.rss - before.rss) / U, residentAfterRuns: (ran.rss - before.rss) / U,
}));
await session.release();
