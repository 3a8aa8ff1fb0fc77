// The registry of architecture descriptions. Adding a model family means adding a description
// here; nothing else in rome-node changes.
import { RomeError } from "../errors.js";
import { gpt2 } from "./gpt2.js";
import { gptNeox } from "./gpt-neox.js";
import { gptj } from "./gptj.js";
import { llama, qwen2 } from "./llama.js";
import type { ArchDescription } from "./types.js";

export const ARCHITECTURES: readonly ArchDescription[] = [gpt2, gptj, gptNeox, llama, qwen2];

export function findArchitecture(raw: Record<string, unknown>, path: string): ArchDescription {
  const arch = ARCHITECTURES.find((a) => a.matches(raw));
  if (!arch) {
    throw new RomeError("ERR_UNSUPPORTED_ARCH",
      `${path}: model_type ${JSON.stringify(raw.model_type)} (architectures ${JSON.stringify(raw.architectures)}) is not supported; ` +
      `supported model types: ${ARCHITECTURES.map((a) => a.name).join(", ")}`);
  }
  return arch;
}

export function architectureByName(name: string): ArchDescription {
  const arch = ARCHITECTURES.find((a) => a.name === name);
  if (!arch) throw new RomeError("ERR_UNSUPPORTED_ARCH", `no architecture description named '${name}'`);
  return arch;
}
