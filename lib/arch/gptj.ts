// GPT-J as Hugging Face writes it (GPTJForCausalLM): one LayerNorm feeding attention and MLP in
// parallel (out = x + attn(ln(x)) + mlp(ln(x))), rotary embeddings on the first rotary_dim
// dimensions of each head with interleaved pairs (2i, 2i + 1), q/k/v/out projections without biases,
// gelu_new, an untied head with a bias. Weights are nn.Linear's [out, in]. Canonical names are HF's
// without the "transformer." prefix (lm_head.* has none).
import { activation, applyRotary, cachedAttention, layerNorm, linear, rotaryTables, splitHeads } from "../graph/ops.js";
import { RomeError } from "../errors.js";
import { attr } from "../graph/builder.js";
import { configInt, type ModelConfig } from "../model/config.js";
import type { ArchDescription, AttnIO, EmitContext } from "./types.js";

const SUPPORTED_ACTIVATIONS = ["gelu_new", "gelu_pytorch_tanh", "gelu", "relu"];

export const gptj: ArchDescription = {
  name: "gptj",
  prefixes: ["transformer.", ""],

  matches(raw) {
    return raw.model_type === "gptj";
  },

  config(raw, path): ModelConfig {
    const nEmbd = configInt(raw, path, "n_embd");
    const nHead = configInt(raw, path, "n_head");
    if (nHead === 0 || nEmbd % nHead !== 0) throw new RomeError("ERR_CONFIG", `${path}: n_embd ${nEmbd} is not divisible by n_head ${nHead}`);
    const headDim = nEmbd / nHead;
    const rotaryDim = raw.rotary_dim == null ? headDim : configInt(raw, path, "rotary_dim");
    if (rotaryDim % 2 !== 0 || rotaryDim > headDim) throw new RomeError("ERR_CONFIG", `${path}: rotary_dim ${rotaryDim} must be even and at most the head width ${headDim}`);
    const act = raw.activation_function ?? "gelu_new";
    if (typeof act !== "string" || !SUPPORTED_ACTIVATIONS.includes(act)) {
      throw new RomeError("ERR_CONFIG", `${path}: activation_function ${JSON.stringify(act)} is not supported (supported: ${SUPPORTED_ACTIVATIONS.join(", ")})`);
    }
    const eps = raw.layer_norm_epsilon ?? 1e-5;
    if (typeof eps !== "number" || !(eps > 0)) throw new RomeError("ERR_CONFIG", `${path}: layer_norm_epsilon must be a positive number`);
    const eos = typeof raw.eos_token_id === "number" ? raw.eos_token_id : 50256;
    return {
      arch: "gptj",
      nLayer: configInt(raw, path, "n_layer"),
      nEmbd,
      nHead,
      nKvHead: nHead,
      headDim,
      nInner: raw.n_inner == null ? 4 * nEmbd : configInt(raw, path, "n_inner"),
      vocabSize: configInt(raw, path, "vocab_size"),
      nPositions: configInt(raw, path, "n_positions"),
      layerNormEps: eps,
      activation: act,
      tieWordEmbeddings: false,
      eosTokenId: eos,
      bosTokenId: typeof raw.bos_token_id === "number" ? raw.bos_token_id : eos,
      rope: { theta: 10000, dims: rotaryDim, pairs: "interleaved" },
      parallelResidual: true,
    };
  },

  weightShapes(cfg) {
    const { nEmbd: d, nInner: f, vocabSize: v } = cfg;
    const m = new Map<string, number[]>([["wte.weight", [v, d]], ["ln_f.weight", [d]], ["ln_f.bias", [d]], ["lm_head.weight", [v, d]], ["lm_head.bias", [v]]]);
    for (let l = 0; l < cfg.nLayer; l++) {
      const h = `h.${l}.`;
      m.set(h + "ln_1.weight", [d]).set(h + "ln_1.bias", [d]);
      for (const p of ["q_proj", "k_proj", "v_proj", "out_proj"]) m.set(`${h}attn.${p}.weight`, [d, d]);
      m.set(h + "mlp.fc_in.weight", [f, d]).set(h + "mlp.fc_in.bias", [f]);
      m.set(h + "mlp.fc_out.weight", [d, f]).set(h + "mlp.fc_out.bias", [d]);
    }
    return m;
  },

  ignoredTensors(name) {
    return /\.attn\.(masked_)?bias$/.test(name);
  },

  emitEmbed({ b, w }, io) {
    const tokEmbed = b.op("Gather", [w("wte.weight"), io.ids], { axis: attr.int(0) });
    // Positions enter through the rotary embeddings: nothing is added to the residual stream.
    const posEmbed = b.op("Expand", [b.constFloat([0], []), b.op("Shape", [tokEmbed])]);
    return { tokEmbed, posEmbed };
  },

  emitAttention({ b, cfg, w }: EmitContext, layer: number, io: AttnIO) {
    const h = `h.${layer}.`;
    const dh = cfg.headDim;
    const x = layerNorm(b, io.resid, w(h + "ln_1.weight"), w(h + "ln_1.bias"), cfg.layerNormEps);
    const tables = rotaryTables(b, io.positions, cfg.rope!);
    const heads = (p: string) => splitHeads(b, linear(b, x, w(`${h}attn.${p}.weight`)), cfg.nHead, dh); // (B, H, T, Dh)
    const att = cachedAttention(
      b, applyRotary(b, heads("q_proj"), tables, cfg.rope!, dh), applyRotary(b, heads("k_proj"), tables, cfg.rope!, dh), heads("v_proj"),
      io.pastKey, io.pastValue, io.bias, dh, cfg.nEmbd, undefined, io.splitPast, io.queries,
    );
    return { attnOut: linear(b, att.context, w(h + "attn.out_proj.weight")), presentKey: att.presentKey, presentValue: att.presentValue };
  },

  emitMlp({ b, cfg, w }, layer, io) {
    const h = `h.${layer}.`;
    // Parallel block: the MLP reads the same LayerNorm of the block's input as the attention.
    const x = layerNorm(b, io.resid, w(h + "ln_1.weight"), w(h + "ln_1.bias"), cfg.layerNormEps);
    const mlpKey = activation(b, linear(b, x, w(h + "mlp.fc_in.weight"), w(h + "mlp.fc_in.bias")), cfg.activation);
    return { mlpKey, mlpOut: linear(b, mlpKey, w(h + "mlp.fc_out.weight"), w(h + "mlp.fc_out.bias")) };
  },

  emitHead({ b, cfg, w }, resid) {
    const x = layerNorm(b, resid, w("ln_f.weight"), w("ln_f.bias"), cfg.layerNormEps);
    return b.op("Gemm", [x, w("lm_head.weight"), w("lm_head.bias")], { transB: attr.int(1) });
  },

  editTarget(layer) {
    return { weight: `h.${layer}.mlp.fc_out.weight`, layout: "out_in" };
  },
};
