"""Process start-up before any JAX computation: the allocator, joining a multi-process job,
then the persistent compilation cache.

`setup_runtime(args)` reads the command line's --coordinator, --num-processes, --process-id
and --init-timeout (absent on commands that run in one process), ADARL_JAX_MALLOC (see
`keep_heap_resident`; 'off' leaves the C allocator as it is) and ADARL_JAX_COMPILATION_CACHE
(a folder, default ~/.cache/adarl_jax/xla; 'off' disables the cache).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time

__all__ = ["keep_heap_resident", "setup_runtime", "wait_for_coordinator"]

MALLOC_ENV = "ADARL_JAX_MALLOC"
# glibc's mallopt parameters (malloc.h) and the values keep_heap_resident sets
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_RESIDENT = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2 ** 31 - 1))


def _user_set_malloc() -> bool:
    """True when the environment already tunes glibc's malloc (MALLOC_*, GLIBC_TUNABLES)."""
    return (any(k.startswith("MALLOC_") for k in os.environ)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""))


def keep_heap_resident() -> bool:
    """Keeps freed memory in the process instead of handing it back to the kernel (glibc).

    XLA:CPU allocates each execution's temporaries as one block (about 105 MB for a train
    step of configs/quick.py at batch 32) and frees it when the step ends. glibc serves a
    block that large with its own mmap (above its 32 MiB cap on the mmap threshold, or from a
    thread's arena, whose heaps are at most 64 MiB) and munmaps it on free, so every step
    faulted its temporaries' pages in afresh: 25,750 minor page faults and a quarter of the
    step's CPU time in the kernel. This sets, through mallopt: one arena (every thread
    allocates from the main heap), no mmap for large blocks (they come from the heap) and no
    trimming of the heap's top, so the block is reused from step to step. The cost: the
    process keeps its high-water mark of heap memory until it ends.

    Must run before JAX starts its threads (its CPU backend). Does nothing (returns False)
    where the C library is not glibc, when ADARL_JAX_MALLOC=off, or when the environment
    already tunes malloc (MALLOC_ARENA_MAX, MALLOC_MMAP_MAX_, ..., GLIBC_TUNABLES): those win.
    """
    if os.environ.get(MALLOC_ENV, "").lower() in ("off", "0", "false", "no") or _user_set_malloc():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
            return False
    except OSError:
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in _RESIDENT)


def wait_for_coordinator(address: str, timeout_s: float) -> None:
    """Fails with a plain message when the coordinator's port never opens.

    jax.distributed.initialize cannot be caught when it times out (XLA aborts the process with
    'DEADLINE_EXCEEDED ... another task died'), so processes other than 0 first check that the
    port of process 0 answers, for the same --init-timeout.
    """
    import socket

    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ValueError(f"--coordinator {address!r}: expected host:port, e.g. 10.0.0.2:1234")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"could not reach the coordinator {address} within "
                    f"--init-timeout={timeout_s:g} s ({e.strerror or e}): start process 0 "
                    f"(--process-id 0) there, check the host and port, or raise --init-timeout"
                ) from None
            time.sleep(0.5)


def setup_runtime(args) -> None:
    """Multi-process set-up (before any JAX computation), then the compilation cache.

    --coordinator HOST:PORT with --num-processes and --process-id starts one process of a job
    by hand (GPU hosts, several processes on one machine); --coordinator auto lets JAX find the
    cluster itself (Cloud TPU pod slices, SLURM, Open MPI).
    """
    keep_heap_resident()
    import jax

    coordinator = getattr(args, "coordinator", None)
    if coordinator:
        if getattr(jax.config, "jax_cpu_collectives_implementation", "gloo") in (None, "none"):
            # CPU collectives across processes (older jax defaults to none; gloo since 0.5)
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        timeout = int(args.init_timeout)
        if coordinator == "auto":
            print(f"adarl-jax: jax.distributed.initialize() with auto-detection "
                  f"(--init-timeout={timeout} s)", file=sys.stderr, flush=True)
            jax.distributed.initialize(initialization_timeout=timeout)
        else:
            n, i = args.num_processes, args.process_id
            if n is None or i is None:
                raise ValueError("--coordinator HOST:PORT needs --num-processes N and --process-id I "
                                 "(0 on the coordinator's host); or use --coordinator auto on a "
                                 "TPU pod slice, SLURM or Open MPI")
            if not 0 <= i < n:
                raise ValueError(f"--process-id {i} must be in 0..{n - 1} (--num-processes {n})")
            if i != 0:
                wait_for_coordinator(coordinator, timeout)
            print(f"adarl-jax: process {i} of {n}: waiting up to {timeout} s (--init-timeout) for "
                  f"all processes at {coordinator}", file=sys.stderr, flush=True)
            jax.distributed.initialize(coordinator_address=coordinator, num_processes=n,
                                       process_id=i, initialization_timeout=timeout)
    cache = os.environ.get("ADARL_JAX_COMPILATION_CACHE", os.path.expanduser("~/.cache/adarl_jax/xla"))
    if cache != "off":
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
