"""Memory statistics, garbage collection and tracemalloc, for ErlangPython.Memory."""

import gc
import tracemalloc


def stats():
    details = {
        "gc_stats": gc.get_stats(),
        "gc_count": gc.get_count(),
        "gc_threshold": gc.get_threshold(),
        "tracemalloc": tracemalloc.is_tracing(),
    }
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        details["traced_memory_current"] = current
        details["traced_memory_peak"] = peak
    return details


def collect(generation):
    return gc.collect(generation)


def tracemalloc_start(frames):
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracemalloc.start(frames)


def tracemalloc_stop():
    tracemalloc.stop()
