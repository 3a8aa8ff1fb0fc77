// The addon's load-time heap reservation (native/heap.h): onnxruntime pre-packs every weight into
// fresh memory, and where fresh pages are dear (a virtual machine that hands them back to its host)
// faulting them in is most of a large model's load. A reservation serves the loading thread's
// allocations from one region of the heap, on huge pages that a helper thread faults in meanwhile.
// Each call is a no-op without the addon (ROME_NATIVE_PATH=none) or off Linux/glibc.
import { nativeAddon } from "./native-load.js";
import { checkInt } from "./errors.js";

// An addon built before these exports (an old build/) has no such functions: the same as no addon.
function addon(): Partial<Pick<ReturnType<typeof nativeAddon>, "heapReserveBegin" | "heapReserveEnd" | "heapTrim">> | undefined {
  try {
    return nativeAddon();
  } catch {
    return undefined; // no addon: allocations go on as glibc decides
  }
}

/**
 * Reserves `bytes` for the calling thread's coming long-lived allocations (see native/heap.h).
 * Returns whether a reservation was made: only on the process's main thread, one at a time; end
 * it with endHeapReservation().
 */
export function beginHeapReservation(bytes: number): boolean {
  checkInt("bytes", bytes, 0, Number.MAX_SAFE_INTEGER);
  return addon()?.heapReserveBegin?.(bytes) ?? false;
}

/** Ends the reservation beginHeapReservation made, returning its unused part to the system. */
export function endHeapReservation(): void {
  addon()?.heapReserveEnd?.();
}

/** Returns the heap's free pages to the system (after a model's sessions were released). */
export function trimHeap(): void {
  addon()?.heapTrim?.();
}
