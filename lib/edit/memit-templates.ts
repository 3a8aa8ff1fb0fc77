// MEMIT's context templates: the group ["{}"] and a group of short texts the model writes after
// "The", "Therefore", "Because", "I", "You" ("<text>. {}"), as kmeng01/memit samples them (10
// tokens with the prompt, top-k 5), seeded so a batch is reproducible.
import { RomeError } from "../errors.js";
import type { Model } from "../runtime/model.js";

const STARTS = ["The", "Therefore", "Because", "I", "You"];

export async function memitTemplates(model: Model, seed: number): Promise<string[][]> {
  const generated: string[] = [];
  for (let i = 0; i < STARTS.length; i++) {
    const ids = (await model.tokenizer.encode(STARTS[i]!)).ids;
    const more = await model.generateIds(ids, { maxTokens: Math.max(1, 10 - ids.length), topK: 5, seed: seed + i });
    const text = model.tokenizer.decode([...ids, ...more], { start: true }).replaceAll("<|endoftext|>", "");
    generated.push(text.replaceAll("{", " ").replaceAll("}", " ") + ". {}");
  }
  return [["{}"], generated];
}

/** Caller-given templates: strings (one group each) or groups of strings, each with exactly one "{}". */
export function checkTemplateGroups(templates: readonly (string | readonly string[])[]): string[][] {
  if (!Array.isArray(templates) || templates.length === 0) throw new RomeError("ERR_ARGUMENT", "contextTemplates must be a non-empty array of strings or of groups of strings containing \"{}\"");
  return templates.map((g, i) => {
    const group = typeof g === "string" ? [g] : g;
    if (!Array.isArray(group) || group.length === 0) throw new RomeError("ERR_ARGUMENT", `context template group ${i} must be a string or a non-empty array of strings`);
    return group.map((t, j) => {
      if (typeof t !== "string" || t.split("{}").length !== 2) throw new RomeError("ERR_ARGUMENT", `context template ${i}.${j} (${JSON.stringify(t)}) must contain "{}" exactly once`);
      return t;
    });
  });
}
