// GPT-2 as Hugging Face writes it (GPT2LMHeadModel / GPT2Model): learned position embeddings,
// pre-norm blocks, fused QKV in Conv1D [in, out] layout (used as is: x @ W), gelu_new, a head tied
// to the token embeddings. Canonical weight names are HF's without the "transformer." prefix.
import { activation, affine, cachedAttention, layerNorm, splitHeads } from "../graph/ops.js";
import { RomeError } from "../errors.js";
import { attr } from "../graph/builder.js";
import { configInt, type ModelConfig } from "../model/config.js";
import type { ArchDescription, AttnIO, EmitContext } from "./types.js";

const SUPPORTED_ACTIVATIONS = ["gelu_new", "gelu_pytorch_tanh", "gelu", "relu"];

export const gpt2: ArchDescription = {
  name: "gpt2",
  prefixes: ["transformer.", ""],

  // Hugging Face saves the causal-mask buffers of older GPT-2 code, and some tools a tied head.
  ignoredTensors(name, cfg) {
    const m = /^(?:transformer\.)?h\.(\d+)\.attn\.(?:bias|masked_bias)$/.exec(name);
    if (m) return Number(m[1]) < cfg.nLayer;
    return cfg.tieWordEmbeddings && name === "lm_head.weight";
  },

  matches(raw) {
    return raw.model_type === "gpt2";
  },

  config(raw, path): ModelConfig {
    const nEmbd = configInt(raw, path, "n_embd");
    const nHead = configInt(raw, path, "n_head");
    if (nHead === 0 || nEmbd % nHead !== 0) {
      throw new RomeError("ERR_CONFIG", `${path}: n_embd ${nEmbd} is not divisible by n_head ${nHead}`);
    }
    const act = raw.activation_function ?? "gelu_new";
    if (typeof act !== "string" || !SUPPORTED_ACTIVATIONS.includes(act)) {
      throw new RomeError("ERR_CONFIG", `${path}: activation_function ${JSON.stringify(act)} is not supported (supported: ${SUPPORTED_ACTIVATIONS.join(", ")})`);
    }
    if (raw.scale_attn_by_inverse_layer_idx === true || raw.reorder_and_upcast_attn === true) {
      throw new RomeError("ERR_CONFIG", `${path}: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported`);
    }
    const eps = raw.layer_norm_epsilon ?? 1e-5;
    if (typeof eps !== "number" || !(eps > 0)) throw new RomeError("ERR_CONFIG", `${path}: layer_norm_epsilon must be a positive number`);
    const eos = raw.eos_token_id ?? 50256;
    return {
      arch: "gpt2",
      nLayer: configInt(raw, path, "n_layer"),
      nEmbd,
      nHead,
      nKvHead: nHead,
      headDim: nEmbd / nHead,
      nInner: raw.n_inner == null ? 4 * nEmbd : configInt(raw, path, "n_inner"),
      vocabSize: configInt(raw, path, "vocab_size"),
      nPositions: configInt(raw, path, "n_positions", "n_ctx"),
      layerNormEps: eps,
      activation: act,
      tieWordEmbeddings: raw.tie_word_embeddings !== false,
      eosTokenId: typeof eos === "number" ? eos : 50256,
      bosTokenId: typeof raw.bos_token_id === "number" ? raw.bos_token_id : (typeof eos === "number" ? eos : 50256),
    };
  },

  weightShapes(cfg) {
    const { nEmbd: d, nInner: f, vocabSize: v, nPositions: p } = cfg;
    const m = new Map<string, number[]>([
      ["wte.weight", [v, d]],
      ["wpe.weight", [p, d]],
      ["ln_f.weight", [d]],
      ["ln_f.bias", [d]],
    ]);
    for (let l = 0; l < cfg.nLayer; l++) {
      const h = `h.${l}.`;
      m.set(h + "ln_1.weight", [d]).set(h + "ln_1.bias", [d]);
      m.set(h + "attn.c_attn.weight", [d, 3 * d]).set(h + "attn.c_attn.bias", [3 * d]);
      m.set(h + "attn.c_proj.weight", [d, d]).set(h + "attn.c_proj.bias", [d]);
      m.set(h + "ln_2.weight", [d]).set(h + "ln_2.bias", [d]);
      m.set(h + "mlp.c_fc.weight", [d, f]).set(h + "mlp.c_fc.bias", [f]);
      m.set(h + "mlp.c_proj.weight", [f, d]).set(h + "mlp.c_proj.bias", [d]);
    }
    if (!cfg.tieWordEmbeddings) m.set("lm_head.weight", [v, d]);
    return m;
  },

  emitEmbed({ b, w }, io) {
    const tokEmbed = b.op("Gather", [w("wte.weight"), io.ids], { axis: attr.int(0) });
    const posEmbed = b.op("Gather", [w("wpe.weight"), io.positions], { axis: attr.int(0) });
    return { tokEmbed, posEmbed };
  },

  emitAttention({ b, cfg, w }: EmitContext, layer: number, io: AttnIO) {
    const h = `h.${layer}.`;
    const dh = cfg.nEmbd / cfg.nHead;
    const x = layerNorm(b, io.resid, w(h + "ln_1.weight"), w(h + "ln_1.bias"), cfg.layerNormEps);
    const qkv = affine(b, x, w(h + "attn.c_attn.weight"), w(h + "attn.c_attn.bias")); // (B, T, 3D)
    const [q, k, v] = b.opMulti("Split", [qkv, b.constInt64([cfg.nEmbd, cfg.nEmbd, cfg.nEmbd])], 3, { axis: attr.int(-1) });
    const att = cachedAttention(
      b, splitHeads(b, q!, cfg.nHead, dh), splitHeads(b, k!, cfg.nHead, dh), splitHeads(b, v!, cfg.nHead, dh),
      io.pastKey, io.pastValue, io.bias, dh, cfg.nEmbd, undefined, io.splitPast, io.queries,
    );
    const attnOut = affine(b, att.context, w(h + "attn.c_proj.weight"), w(h + "attn.c_proj.bias"));
    return { attnOut, presentKey: att.presentKey, presentValue: att.presentValue };
  },

  emitMlp({ b, cfg, w }, layer, { residMid }) {
    const h = `h.${layer}.`;
    const x = layerNorm(b, residMid, w(h + "ln_2.weight"), w(h + "ln_2.bias"), cfg.layerNormEps);
    const mlpKey = activation(b, affine(b, x, w(h + "mlp.c_fc.weight"), w(h + "mlp.c_fc.bias")), cfg.activation);
    const mlpOut = affine(b, mlpKey, w(h + "mlp.c_proj.weight"), w(h + "mlp.c_proj.bias"));
    return { mlpKey, mlpOut };
  },

  emitHead({ b, cfg, w }, resid) {
    const x = layerNorm(b, resid, w("ln_f.weight"), w("ln_f.bias"), cfg.layerNormEps);
    const head = cfg.tieWordEmbeddings ? w("wte.weight") : w("lm_head.weight");
    return b.op("Gemm", [x, head], { transB: attr.int(1) });
  },

  editTarget(layer) {
    return { weight: `h.${layer}.mlp.c_proj.weight`, layout: "in_out" };
  },
};
