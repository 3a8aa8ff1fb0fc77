// Reading byte ranges of files once, sequentially, so that the kernel's page cache holds them: a
// range that onnxruntime maps (ONNX external data) and reads on a session's first run is then
// mapped from memory instead of faulting back from the disk a few pages at a time.
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { ExternalData } from "../graph/builder.js";

/** Reads every range through one reused buffer of at most `chunkBytes` (the bytes are dropped; the page cache keeps them), off the event loop. */
export async function readAhead(ranges: readonly ExternalData[], chunkBytes = 1 << 24): Promise<void> {
  if (ranges.length === 0) return;
  chunkBytes = Math.min(chunkBytes, Math.max(...ranges.map((r) => r.length)));
  const chunk = Buffer.allocUnsafe(chunkBytes);
  for (const r of ranges) {
    const file = await open(join(r.folder, r.location), "r");
    try {
      for (let at = r.offset, end = r.offset + r.length; at < end;) {
        const { bytesRead } = await file.read(chunk, 0, Math.min(chunkBytes, end - at), at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
    } finally {
      await file.close();
    }
  }
}
