// Llama as Hugging Face writes it (LlamaForCausalLM), and Qwen2 (Qwen2ForCausalLM), which is Llama
// with q/k/v biases: RMSNorm, rotary embeddings on whole heads with rotate_half pairs, grouped-query
// attention, a SwiGLU MLP (down_proj(silu(gate_proj(x)) · up_proj(x))), tied or untied head.
// Weights are nn.Linear's [out, in]. Canonical names are HF's without the "model." prefix
// (lm_head.weight has none).
import { applyRotary, cachedAttention, linear, rmsNorm, rotaryTables, silu, splitHeads } from "../graph/ops.js";
import { RomeError } from "../errors.js";
import { attr } from "../graph/builder.js";
import { configInt, type ModelConfig } from "../model/config.js";
import type { ArchDescription, AttnIO, EmitContext } from "./types.js";

function positiveNumber(raw: Record<string, unknown>, path: string, key: string, dflt: number): number {
  const v = raw[key] ?? dflt;
  if (typeof v !== "number" || !(v > 0)) throw new RomeError("ERR_CONFIG", `${path}: '${key}' must be a positive number, found ${JSON.stringify(v)}`);
  return v;
}

function flag(raw: Record<string, unknown>, path: string, key: string, dflt: boolean): boolean {
  const v = raw[key] ?? dflt;
  if (typeof v !== "boolean") throw new RomeError("ERR_CONFIG", `${path}: '${key}' must be true or false, found ${JSON.stringify(v)}`);
  return v;
}

/** The config of a Llama-shaped model; `qkvBias`/`attnOutBias`/`mlpBias` say where its family puts biases. */
function llamaConfig(raw: Record<string, unknown>, path: string, arch: string, biases: NonNullable<ModelConfig["biases"]>): ModelConfig {
  const nEmbd = configInt(raw, path, "hidden_size");
  const nHead = configInt(raw, path, "num_attention_heads");
  const nKvHead = raw.num_key_value_heads == null ? nHead : configInt(raw, path, "num_key_value_heads");
  if (nHead === 0 || nKvHead === 0 || nHead % nKvHead !== 0) {
    throw new RomeError("ERR_CONFIG", `${path}: num_attention_heads ${nHead} is not a multiple of num_key_value_heads ${nKvHead}`);
  }
  const headDim = raw.head_dim == null ? nEmbd / nHead : configInt(raw, path, "head_dim");
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new RomeError("ERR_CONFIG", `${path}: the head width ${headDim} must be an even integer`);
  const act = raw.hidden_act ?? "silu";
  if (act !== "silu") throw new RomeError("ERR_CONFIG", `${path}: hidden_act ${JSON.stringify(act)} is not supported (supported: silu)`);
  if (raw.rope_scaling != null) throw new RomeError("ERR_CONFIG", `${path}: rope_scaling ${JSON.stringify(raw.rope_scaling)} is not supported (only plain rotary embeddings)`);
  if (raw.use_sliding_window === true) throw new RomeError("ERR_CONFIG", `${path}: use_sliding_window is not supported`);
  if (raw.pretraining_tp != null && raw.pretraining_tp !== 1) throw new RomeError("ERR_CONFIG", `${path}: pretraining_tp ${JSON.stringify(raw.pretraining_tp)} is not supported`);
  const eos = Array.isArray(raw.eos_token_id) ? raw.eos_token_id[0] : raw.eos_token_id;
  const bos = raw.bos_token_id;
  if (typeof eos !== "number") throw new RomeError("ERR_CONFIG", `${path}: missing a numeric 'eos_token_id'`);
  return {
    arch,
    nLayer: configInt(raw, path, "num_hidden_layers"),
    nEmbd,
    nHead,
    nKvHead,
    headDim,
    nInner: configInt(raw, path, "intermediate_size"),
    vocabSize: configInt(raw, path, "vocab_size"),
    nPositions: configInt(raw, path, "max_position_embeddings"),
    layerNormEps: positiveNumber(raw, path, "rms_norm_eps", 1e-6),
    activation: "silu",
    tieWordEmbeddings: flag(raw, path, "tie_word_embeddings", false),
    eosTokenId: eos,
    bosTokenId: typeof bos === "number" ? bos : eos,
    rope: { theta: positiveNumber(raw, path, "rope_theta", 10000), dims: headDim, pairs: "half" },
    biases,
    gatedMlp: true,
  };
}

function llamaFamily(name: string, config: (raw: Record<string, unknown>, path: string) => ModelConfig): ArchDescription {
  return {
    name,
    prefixes: ["model.", ""],

    matches(raw) {
      return raw.model_type === name;
    },

    config,

    weightShapes(cfg) {
      const { nEmbd: d, nInner: f, vocabSize: v, headDim: dh } = cfg;
      const q = cfg.nHead * dh, kv = cfg.nKvHead * dh;
      const bias = cfg.biases!;
      const m = new Map<string, number[]>([["embed_tokens.weight", [v, d]], ["norm.weight", [d]]]);
      for (let l = 0; l < cfg.nLayer; l++) {
        const h = `layers.${l}.`;
        m.set(h + "input_layernorm.weight", [d]).set(h + "post_attention_layernorm.weight", [d]);
        m.set(h + "self_attn.q_proj.weight", [q, d]).set(h + "self_attn.k_proj.weight", [kv, d]).set(h + "self_attn.v_proj.weight", [kv, d]);
        if (bias.qkv) m.set(h + "self_attn.q_proj.bias", [q]).set(h + "self_attn.k_proj.bias", [kv]).set(h + "self_attn.v_proj.bias", [kv]);
        m.set(h + "self_attn.o_proj.weight", [d, q]);
        if (bias.attnOut) m.set(h + "self_attn.o_proj.bias", [d]);
        m.set(h + "mlp.gate_proj.weight", [f, d]).set(h + "mlp.up_proj.weight", [f, d]).set(h + "mlp.down_proj.weight", [d, f]);
        if (bias.mlp) m.set(h + "mlp.gate_proj.bias", [f]).set(h + "mlp.up_proj.bias", [f]).set(h + "mlp.down_proj.bias", [d]);
      }
      if (!cfg.tieWordEmbeddings) m.set("lm_head.weight", [v, d]);
      return m;
    },

    ignoredTensors(name) {
      return /\.self_attn\.rotary_emb\.inv_freq$/.test(name);
    },

    emitEmbed({ b, w }, io) {
      const tokEmbed = b.op("Gather", [w("embed_tokens.weight"), io.ids], { axis: attr.int(0) });
      // Positions enter through the rotary embeddings: nothing is added to the residual stream.
      const posEmbed = b.op("Expand", [b.constFloat([0], []), b.op("Shape", [tokEmbed])]);
      return { tokEmbed, posEmbed };
    },

    emitAttention({ b, cfg, w }: EmitContext, layer: number, io: AttnIO) {
      const h = `layers.${layer}.self_attn.`;
      const dh = cfg.headDim;
      const opt = (name: string, on: boolean) => (on ? w(h + name) : undefined);
      const x = rmsNorm(b, io.resid, w(`layers.${layer}.input_layernorm.weight`), cfg.layerNormEps);
      const q = linear(b, x, w(h + "q_proj.weight"), opt("q_proj.bias", cfg.biases!.qkv));   // (B, T, H·Dh)
      const k = linear(b, x, w(h + "k_proj.weight"), opt("k_proj.bias", cfg.biases!.qkv));   // (B, T, Hkv·Dh)
      const v = linear(b, x, w(h + "v_proj.weight"), opt("v_proj.bias", cfg.biases!.qkv));
      const tables = rotaryTables(b, io.positions, cfg.rope!);
      const att = cachedAttention(
        b,
        applyRotary(b, splitHeads(b, q, cfg.nHead, dh), tables, cfg.rope!, dh),
        applyRotary(b, splitHeads(b, k, cfg.nKvHead, dh), tables, cfg.rope!, dh),
        splitHeads(b, v, cfg.nKvHead, dh),
        io.pastKey, io.pastValue, io.bias, dh, cfg.nHead * dh, cfg, io.splitPast, io.queries,
      );
      const attnOut = linear(b, att.context, w(h + "o_proj.weight"), opt("o_proj.bias", cfg.biases!.attnOut));
      return { attnOut, presentKey: att.presentKey, presentValue: att.presentValue };
    },

    emitMlp({ b, cfg, w }, layer, { residMid }) {
      const h = `layers.${layer}.`;
      const opt = (name: string) => (cfg.biases!.mlp ? w(h + name) : undefined);
      const x = rmsNorm(b, residMid, w(h + "post_attention_layernorm.weight"), cfg.layerNormEps);
      const gate = linear(b, x, w(h + "mlp.gate_proj.weight"), opt("mlp.gate_proj.bias"));  // (B, T, F)
      const up = linear(b, x, w(h + "mlp.up_proj.weight"), opt("mlp.up_proj.bias"));
      const mlpKey = b.op("Mul", [silu(b, gate), up]);
      const mlpOut = linear(b, mlpKey, w(h + "mlp.down_proj.weight"), opt("mlp.down_proj.bias"));
      return { mlpKey, mlpOut };
    },

    emitHead({ b, cfg, w }, resid) {
      const x = rmsNorm(b, resid, w("norm.weight"), cfg.layerNormEps);
      const head = cfg.tieWordEmbeddings ? w("embed_tokens.weight") : w("lm_head.weight");
      return b.op("Gemm", [x, head], { transB: attr.int(1) });
    },

    editTarget(layer) {
      return { weight: `layers.${layer}.mlp.down_proj.weight`, layout: "out_in" };
    },
  };
}

export const llama = llamaFamily("llama", (raw, path) => {
  const attnBias = flag(raw, path, "attention_bias", false);
  return llamaConfig(raw, path, "llama", { qkv: attnBias, attnOut: attnBias, mlp: flag(raw, path, "mlp_bias", false) });
});

export const qwen2 = llamaFamily("qwen2", (raw, path) => llamaConfig(raw, path, "qwen2", { qkv: true, attnOut: false, mlp: false }));
