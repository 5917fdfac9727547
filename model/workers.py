"""CPU runtime rules of the batch commands: which multiprocessing start method their worker processes use (the
world renderer's drawing pool, the evaluation's thumbnail readers and ablation head fits), and how the C
allocator keeps freed memory (:func:`retain_freed_memory`).

``fork`` while the calling process has a single Python thread (fast: the worker code is already imported);
otherwise a fork server, since forking a multi-threaded process can leave the child with a lock held forever.
A fork server (like ``spawn``) starts its workers by importing the caller's main module again, so a script that
calls these functions at its top level must guard it with ``if __name__ == "__main__":`` (Python's rule for
those start methods); ``python -m pigeon``, the ``pigeon`` command and pytest do."""
from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import sys
import threading
from collections.abc import Sequence

log = logging.getLogger(__name__)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters (malloc.h)


def pool_context(preload: Sequence[str] = ()) -> mp.context.BaseContext:
    """The multiprocessing context for a pool of CPU workers; ``preload``: modules a fork server imports once
    (the workers' own code), so that each worker starts without importing them again."""
    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return mp.get_context("spawn")


def retain_freed_memory() -> bool:
    """Let glibc's malloc keep the memory a process frees for its next allocations instead of handing it back to
    the system each time: blocks up to 1 GiB come from the heap (not a fresh ``mmap`` each), the heap is not
    trimmed below 2 GiB of free space, and it grows 256 MiB at a time. A training step allocates and frees tens
    of megabytes of activations, and by default every such block is mapped again and its pages faulted in and
    zeroed by the kernel (benchmarks/bench_train.py, the demo encoder step on 2 cores: system time 41 -> 19 ms per
    step, images/s x1.03).
    What is computed stays the same up to where the bytes live: the demo checkpoint rebuilt with it has the same
    weights, though BLAS may round differently for an input at another address (one figure of its report, a
    float32 probe, moved by 5 of 7,357 rounds). The cost: a resident size that stays near its peak. True when
    applied (Linux with glibc), False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = all(libc.mallopt(k, v) == 1 for k, v in ((_M_MMAP_THRESHOLD, 1 << 30),
                                                       (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 1 << 28)))
    except (OSError, AttributeError):  # another C library (musl): nothing to tune
        return False
    if not ok:
        log.debug("mallopt refused a setting; the allocator keeps its defaults for it")
    return ok
