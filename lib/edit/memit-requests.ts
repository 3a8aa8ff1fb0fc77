// The requests of a MEMIT/AlphaEdit batch, checked and laid out as prompts: per request the key
// prompts (every context template with the request's prompt, subject located), the bare prompt
// (where the current z is read), and the target prompts of the z optimisation. Requests that share
// a subject and relation but want different objects are refused — one key cannot hold two values —
// and requests that share only a subject are reported.
import { RomeError } from "../errors.js";
import type { Model } from "../runtime/model.js";
import { locateSubject, type Located } from "./lookup.js";
import type { TargetPrompts } from "./memit-z.js";
import type { RomeRequest } from "./rome.js";
import { fillTemplate } from "./templates.js";

export interface MemitRequest extends RomeRequest {
  /** The relation (CounterFact's relation_id, e.g. "P131"). Default: the prompt identifies it. */
  relationId?: string;
}

/** Requests (indices into the batch) that share a subject but not the relation. */
export interface SharedSubject {
  subject: string;
  requests: number[];
}

export interface PreparedBatch {
  requests: MemitRequest[];
  /** Context template groups; keys are averaged within each group, then over groups. */
  groups: string[][];
  /** Per request, one located prompt per template (groups flattened, in order). */
  keyPrompts: Located[][];
  /** Per request, the bare prompt with the subject. */
  bare: Located[];
  /** Per request, the prompts of its target optimisation. */
  targetPrompts: TargetPrompts[];
  sharedSubjects: SharedSubject[];
}

/** Checks the batch (shape, conflicts) and builds every prompt it needs. */
export async function prepareBatch(model: Model, requests: readonly MemitRequest[], groups: string[][]): Promise<PreparedBatch> {
  if (!Array.isArray(requests) || requests.length === 0) throw new RomeError("ERR_ARGUMENT", "a batch edit needs a non-empty array of requests");
  const reqs = requests.map((r, i) => checkRequest(r, i));
  const sharedSubjects = checkConflicts(reqs);
  const tok = model.tokenizer;
  const flat = groups.flat();
  const keyPrompts: Located[][] = [];
  const bare: Located[] = [];
  const targetPrompts: TargetPrompts[] = [];
  for (const r of reqs) {
    const keys = await Promise.all(flat.map((t) => locateSubject(tok, fillTemplate(t, r.prompt), r.subject)));
    const b = await locateSubject(tok, r.prompt, r.subject);
    const target = (await tok.encode(r.targetNew, { continuation: true })).ids;
    const head = tok.decode(target.slice(0, -1));
    const rewriting = await Promise.all(flat.map((t) => locateSubject(tok, fillTemplate(t, r.prompt) + head, r.subject)));
    const kl = await locateSubject(tok, "{} is a", r.subject);
    for (const p of [...keys, ...rewriting]) model.checkLength(p.ids.length, "a templated prompt");
    keyPrompts.push(keys);
    bare.push(b);
    targetPrompts.push({ rewriting, kl, target });
  }
  return { requests: reqs, groups, keyPrompts, bare, targetPrompts, sharedSubjects };
}

function checkRequest(r: MemitRequest, i: number): MemitRequest {
  const where = `request ${i}`;
  if (typeof r !== "object" || r === null) throw new RomeError("ERR_ARGUMENT", `${where} must be an object { prompt, subject, targetNew }`);
  const extra = Object.keys(r).filter((k) => !["prompt", "subject", "targetNew", "targetTrue", "relationId"].includes(k));
  if (extra.length) throw new RomeError("ERR_ARGUMENT", `${where} has unknown field(s) ${extra.join(", ")}; expected prompt, subject, targetNew, targetTrue, relationId`);
  if (typeof r.prompt !== "string" || r.prompt.split("{}").length !== 2) {
    throw new RomeError("ERR_ARGUMENT", `${where}: the prompt must contain "{}" exactly once where the subject goes, received ${JSON.stringify(r.prompt)}`);
  }
  if (typeof r.subject !== "string" || r.subject.trim().length === 0) throw new RomeError("ERR_EMPTY_SUBJECT", `${where}: the subject is empty`);
  if (typeof r.targetNew !== "string" || r.targetNew.trim().length === 0) throw new RomeError("ERR_ARGUMENT", `${where}: targetNew must be a non-empty string`);
  if (r.relationId !== undefined && typeof r.relationId !== "string") throw new RomeError("ERR_ARGUMENT", `${where}: relationId must be a string`);
  // A leading space, as the reference adds, so the object tokenizes as a continuation.
  return { ...r, targetNew: /^\s/.test(r.targetNew) ? r.targetNew : " " + r.targetNew };
}

function checkConflicts(reqs: readonly MemitRequest[]): SharedSubject[] {
  const bySubject = new Map<string, number[]>();
  reqs.forEach((r, i) => {
    const list = bySubject.get(r.subject) ?? [];
    list.push(i);
    bySubject.set(r.subject, list);
  });
  const shared: SharedSubject[] = [];
  for (const [subject, idx] of bySubject) {
    if (idx.length < 2) continue;
    const byRelation = new Map<string, number>();
    for (const i of idx) {
      const r = reqs[i]!;
      const rel = r.relationId ?? r.prompt;
      const j = byRelation.get(rel);
      if (j !== undefined && reqs[j]!.targetNew !== r.targetNew) {
        throw new RomeError("ERR_EDIT_CONFLICT", `requests ${j} and ${i} give the subject ${JSON.stringify(subject)} and relation ${JSON.stringify(rel)} different objects ` +
          `(${JSON.stringify(reqs[j]!.targetNew.trim())} and ${JSON.stringify(r.targetNew.trim())}); one key cannot hold two values: keep one of them or edit them in different batches`);
      }
      byRelation.set(rel, i);
    }
    if (byRelation.size > 1) shared.push({ subject, requests: idx });
  }
  return shared;
}
