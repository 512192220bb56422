"""Process start-up before any JAX computation: joining a multi-process job, then the
persistent compilation cache.

`setup_runtime(args)` reads the command line's --coordinator, --num-processes, --process-id
and --init-timeout (absent on commands that run in one process) and ADARL_JAX_COMPILATION_CACHE
(a folder, default ~/.cache/adarl_jax/xla; 'off' disables the cache).
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["setup_runtime", "wait_for_coordinator"]


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
