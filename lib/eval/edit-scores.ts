// Scores of edit records on the model as it is (whatever edits are enabled): CounterFact records by
// the reference's probability comparisons (ES/PS/NS and magnitudes), zsRE and single-file records by
// token accuracy (the share of target tokens that are the model's top-1 prediction, teacher-forced,
// as the reference's zsRE evaluation). Also the top-1 accuracy on facts no edit touches.
import type { Model } from "../runtime/model.js";
import { fillTemplate } from "../edit/templates.js";
import { evaluateRecords } from "./counterfact.js";
import type { EditRecord, Probe } from "./datasets.js";

/** One record's scores, fractions in [0, 1] (NaN where the record has no prompt of that kind). */
export interface EditScores {
  id: number;
  /** Efficacy (CounterFact: NLL comparison; token accuracy otherwise). */
  es: number;
  ps: number;
  /** Specificity: neighbourhood (CounterFact) or locality (token accuracy). */
  ns: number;
  em?: number;
  pm?: number;
  nm?: number;
}

/** Gives locality probes without a target the model's own top-1 next token (call before any edit). */
export async function fixLocalityTargets(model: Model, records: readonly EditRecord[], signal?: AbortSignal): Promise<void> {
  const open = records.flatMap((r) => r.locality.filter((p) => p.target === undefined));
  if (open.length === 0) return;
  const preds = await model.predict(open.map((p) => p.prompt), { topK: 1, signal });
  open.forEach((p, i) => (p.target = preds[i]![0]!.token));
}

export async function scoreRecords(model: Model, records: readonly EditRecord[], signal?: AbortSignal): Promise<EditScores[]> {
  const cf = records.filter((r) => r.counterfact);
  const cfScores = new Map((await evaluateRecords(model, cf.map((r) => r.counterfact!), { signal })).map((m) => [m.case_id, m]));
  const probes: Probe[] = records.flatMap((r) => [...r.rewrite, ...r.paraphrase, ...r.locality.map((p) => ({ prompt: p.prompt, target: p.target! }))]);
  const acc = probes.length ? (await model.logprob(probes, { signal })).map((l) => l.tokens.filter((t) => t.top1).length / l.tokens.length) : [];
  let at = 0;
  const mean = (n: number) => {
    const xs = acc.slice(at, at + n);
    at += n;
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
  };
  return records.map((r) => {
    const m = cfScores.get(r.id);
    if (r.counterfact && m) return { id: r.id, es: m.es, ps: m.ps, ns: m.ns, em: m.em, pm: m.pm, nm: m.nm };
    return { id: r.id, es: mean(r.rewrite.length), ps: mean(r.paraphrase.length), ns: mean(r.locality.length) };
  });
}

/** Top-1 accuracy of the first token of each record's true object after its prompt (records without one are skipped). */
export async function untouchedAccuracy(model: Model, records: readonly EditRecord[], signal?: AbortSignal): Promise<number> {
  const known = records.filter((r) => r.request.targetTrue);
  if (known.length === 0) return NaN;
  const lp = await model.logprob(known.map((r) => ({ prompt: fillTemplate(r.request.prompt, r.request.subject), target: " " + r.request.targetTrue!.trim() })), { signal });
  return lp.filter((l) => l.tokens[0]!.top1).length / lp.length;
}
