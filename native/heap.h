// Memory for a burst of long-lived allocations (a model's load): onnxruntime pre-packs every weight
// into memory it allocates and zero-fills at once, and on a virtual machine whose fresh pages come
// from the host (free-page reporting) each new 4 KiB page costs ~15 µs of faults — nearly all of a
// GPT-2-XL load. A reservation makes the calling thread's next allocations come from one region of
// the heap backed by transparent huge pages, which a helper thread faults in ahead of time.
#pragma once
#include <cstddef>

namespace rome {

/**
 * Reserves `bytes` at the top of the main heap for the calling thread's coming allocations and
 * starts faulting them in from the far end on a helper thread; until heap_reserve_end, every
 * allocation is served from the heap (never a separate mapping), so they fill the region in order.
 * Only on the process's main thread (its allocations use that heap), on Linux with glibc, and one
 * reservation at a time: otherwise it changes nothing and returns false.
 */
bool heap_reserve_begin(std::size_t bytes);

/** Stops the helper, restores separate mappings for large allocations and returns the unused part of
 * the region to the system. Does nothing without a reservation. */
void heap_reserve_end();

/** Returns the heap's free pages to the system (after a model's memory was freed). */
void heap_trim();

/** Whether heap_reserve_begin can work in this build (Linux and glibc). */
bool heap_reserve_supported();

}  // namespace rome
