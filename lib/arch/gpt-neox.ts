// GPT-NeoX / Pythia as Hugging Face writes it (GPTNeoXForCausalLM): a fused query_key_value
// projection whose output is per head [q, k, v] (head-interleaved), rotary embeddings on the first
// rotary_pct of each head with rotate_half pairs, two LayerNorms, the parallel residual
// (out = x + attn(ln1(x)) + mlp(ln2(x))) or, with use_parallel_residual false, the sequential one,
// erf GELU, an untied head without bias. Weights are nn.Linear's [out, in]. Canonical names are HF's
// without the "gpt_neox." prefix (embed_out.weight has none).
import { activation, applyRotary, cachedAttention, layerNorm, linear, rotaryTables } from "../graph/ops.js";
import { RomeError } from "../errors.js";
import { attr } from "../graph/builder.js";
import { configInt, type ModelConfig } from "../model/config.js";
import type { ArchDescription, AttnIO, EmitContext } from "./types.js";

const SUPPORTED_ACTIVATIONS = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"];

export const gptNeox: ArchDescription = {
  name: "gpt_neox",
  prefixes: ["gpt_neox.", ""],

  matches(raw) {
    return raw.model_type === "gpt_neox";
  },

  config(raw, path): ModelConfig {
    const nEmbd = configInt(raw, path, "hidden_size");
    const nHead = configInt(raw, path, "num_attention_heads");
    if (nHead === 0 || nEmbd % nHead !== 0) throw new RomeError("ERR_CONFIG", `${path}: hidden_size ${nEmbd} is not divisible by num_attention_heads ${nHead}`);
    const headDim = nEmbd / nHead;
    const pct = raw.rotary_pct ?? raw.partial_rotary_factor ?? 0.25;
    if (typeof pct !== "number" || !(pct > 0 && pct <= 1)) throw new RomeError("ERR_CONFIG", `${path}: rotary_pct must be in (0, 1], found ${JSON.stringify(pct)}`);
    const rotaryDims = Math.floor(headDim * pct);
    if (rotaryDims % 2 !== 0) throw new RomeError("ERR_CONFIG", `${path}: rotary_pct ${pct} gives ${rotaryDims} rotary dimensions per head, which is odd`);
    const theta = raw.rotary_emb_base ?? raw.rope_theta ?? 10000;
    if (typeof theta !== "number" || !(theta > 0)) throw new RomeError("ERR_CONFIG", `${path}: rotary_emb_base must be a positive number`);
    if (raw.rope_scaling != null) throw new RomeError("ERR_CONFIG", `${path}: rope_scaling ${JSON.stringify(raw.rope_scaling)} is not supported`);
    if (raw.attention_bias === false) throw new RomeError("ERR_CONFIG", `${path}: attention_bias false is not supported`);
    const act = raw.hidden_act ?? "gelu";
    if (typeof act !== "string" || !SUPPORTED_ACTIVATIONS.includes(act)) {
      throw new RomeError("ERR_CONFIG", `${path}: hidden_act ${JSON.stringify(act)} is not supported (supported: ${SUPPORTED_ACTIVATIONS.join(", ")})`);
    }
    const eps = raw.layer_norm_eps ?? 1e-5;
    if (typeof eps !== "number" || !(eps > 0)) throw new RomeError("ERR_CONFIG", `${path}: layer_norm_eps must be a positive number`);
    const eos = typeof raw.eos_token_id === "number" ? raw.eos_token_id : 0;
    return {
      arch: "gpt_neox",
      nLayer: configInt(raw, path, "num_hidden_layers"),
      nEmbd,
      nHead,
      nKvHead: nHead,
      headDim,
      nInner: configInt(raw, path, "intermediate_size"),
      vocabSize: configInt(raw, path, "vocab_size"),
      nPositions: configInt(raw, path, "max_position_embeddings"),
      layerNormEps: eps,
      activation: act,
      tieWordEmbeddings: raw.tie_word_embeddings === true,
      eosTokenId: eos,
      bosTokenId: typeof raw.bos_token_id === "number" ? raw.bos_token_id : eos,
      rope: { theta, dims: rotaryDims, pairs: "half" },
      parallelResidual: raw.use_parallel_residual !== false,
    };
  },

  weightShapes(cfg) {
    const { nEmbd: d, nInner: f, vocabSize: v } = cfg;
    const m = new Map<string, number[]>([["embed_in.weight", [v, d]], ["final_layer_norm.weight", [d]], ["final_layer_norm.bias", [d]]]);
    for (let l = 0; l < cfg.nLayer; l++) {
      const h = `layers.${l}.`;
      m.set(h + "input_layernorm.weight", [d]).set(h + "input_layernorm.bias", [d]);
      m.set(h + "post_attention_layernorm.weight", [d]).set(h + "post_attention_layernorm.bias", [d]);
      m.set(h + "attention.query_key_value.weight", [3 * d, d]).set(h + "attention.query_key_value.bias", [3 * d]);
      m.set(h + "attention.dense.weight", [d, d]).set(h + "attention.dense.bias", [d]);
      m.set(h + "mlp.dense_h_to_4h.weight", [f, d]).set(h + "mlp.dense_h_to_4h.bias", [f]);
      m.set(h + "mlp.dense_4h_to_h.weight", [d, f]).set(h + "mlp.dense_4h_to_h.bias", [d]);
    }
    if (!cfg.tieWordEmbeddings) m.set("embed_out.weight", [v, d]);
    return m;
  },

  ignoredTensors(name) {
    return /\.attention\.(rotary_emb\.inv_freq|bias|masked_bias)$/.test(name);
  },

  emitEmbed({ b, w }, io) {
    const tokEmbed = b.op("Gather", [w("embed_in.weight"), io.ids], { axis: attr.int(0) });
    // Positions enter through the rotary embeddings: nothing is added to the residual stream.
    const posEmbed = b.op("Expand", [b.constFloat([0], []), b.op("Shape", [tokEmbed])]);
    return { tokEmbed, posEmbed };
  },

  emitAttention({ b, cfg, w }: EmitContext, layer: number, io: AttnIO) {
    const h = `layers.${layer}.`;
    const dh = cfg.headDim;
    const x = layerNorm(b, io.resid, w(h + "input_layernorm.weight"), w(h + "input_layernorm.bias"), cfg.layerNormEps);
    const qkv = linear(b, x, w(h + "attention.query_key_value.weight"), w(h + "attention.query_key_value.bias")); // (B, T, 3D)
    // Per head [q, k, v]: (B, T, H, 3·Dh) → (B, H, T, 3·Dh) → three (B, H, T, Dh).
    const perHead = b.op("Transpose", [b.op("Reshape", [qkv, b.constInt64([0, 0, cfg.nHead, 3 * dh])])], { perm: attr.ints([0, 2, 1, 3]) });
    const [q, k, v] = b.opMulti("Split", [perHead, b.constInt64([dh, dh, dh])], 3, { axis: attr.int(-1) });
    const tables = rotaryTables(b, io.positions, cfg.rope!);
    const att = cachedAttention(
      b, applyRotary(b, q!, tables, cfg.rope!, dh), applyRotary(b, k!, tables, cfg.rope!, dh), v!,
      io.pastKey, io.pastValue, io.bias, dh, cfg.nEmbd, undefined, io.splitPast, io.queries,
    );
    const attnOut = linear(b, att.context, w(h + "attention.dense.weight"), w(h + "attention.dense.bias"));
    return { attnOut, presentKey: att.presentKey, presentValue: att.presentValue };
  },

  emitMlp({ b, cfg, w }, layer, io) {
    const h = `layers.${layer}.`;
    // Parallel residual: the MLP reads the block's input; sequential: the stream after attention.
    const input = cfg.parallelResidual ? io.resid : io.residMid;
    const x = layerNorm(b, input, w(h + "post_attention_layernorm.weight"), w(h + "post_attention_layernorm.bias"), cfg.layerNormEps);
    const mlpKey = activation(b, linear(b, x, w(h + "mlp.dense_h_to_4h.weight"), w(h + "mlp.dense_h_to_4h.bias")), cfg.activation);
    return { mlpKey, mlpOut: linear(b, mlpKey, w(h + "mlp.dense_4h_to_h.weight"), w(h + "mlp.dense_4h_to_h.bias")) };
  },

  emitHead({ b, cfg, w }, resid) {
    const x = layerNorm(b, resid, w("final_layer_norm.weight"), w("final_layer_norm.bias"), cfg.layerNormEps);
    return b.op("Gemm", [x, cfg.tieWordEmbeddings ? w("embed_in.weight") : w("embed_out.weight")], { transB: attr.int(1) });
  },

  editTarget(layer) {
    return { weight: `layers.${layer}.mlp.dense_4h_to_h.weight`, layout: "out_in" };
  },
};
