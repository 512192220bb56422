"""Folds in parallel worker processes on one machine: `train`/`reproduce --workers N`.

XLA:CPU spreads one small model's step poorly over cores, so N single-core processes that
each train their own folds go nearly N times as fast as one process on N cores. The parent
prepares the spectrogram cache (so workers never race to write it) and runs the baselines,
then starts N copies of the same command, each with `--folds` its share (folds i, i+N, ...),
pinned to its own cores. They write into the one workdir exactly as separate `--folds` jobs
do; finished folds stay finished whatever happens to the others.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

__all__ = ["available_cores", "default_workers", "split_folds", "worker_argv", "run_workers"]


def available_cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def default_workers(n_folds: int) -> int:
    """One worker per core on a CPU-only host (at most one per fold); 1 with an accelerator,
    where one process fills the device."""
    import jax

    if jax.default_backend() != "cpu":
        return 1
    return max(1, min(len(available_cores()), n_folds))


def split_folds(folds: list[int], n: int) -> list[list[int]]:
    """Folds dealt round-robin to n workers (empty shares dropped)."""
    return [share for share in (folds[i::n] for i in range(n)) if share]


def worker_argv(argv: list[str], share: list[int]) -> list[str]:
    """The parent's command line for one worker: its folds, one worker, no baselines (the
    parent ran them)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        key = a.split("=", 1)[0]
        if key in ("--folds", "--workers", "--baselines"):
            skip = "=" not in a
            continue
        out.append(a)
    out += ["--folds", ",".join(map(str, share)), "--workers", "1"]
    return out + (["--baselines", "none"] if "reproduce" in argv else [])


def _pin(cores: list[int]):
    def pin():
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cores)
    return pin


def run_workers(argv: list[str], folds: list[int], n: int) -> int:
    """Runs the command `argv` (adarl-jax arguments, without the program) in n workers over
    `folds`; returns 0 when all succeed, else the first failing worker's exit code (after
    every worker has ended, so that no finished fold is lost)."""
    shares = split_folds(folds, n)
    cores = available_cores()
    per = max(1, len(cores) // len(shares))
    procs = []
    for i, share in enumerate(shares):
        mine = cores[i * per:(i + 1) * per] or cores
        cmd = [sys.executable, "-m", "adarl_jax.cli", *worker_argv(argv, share)]
        print(f"worker {i}: folds {','.join(map(str, share))} on core(s) {','.join(map(str, mine))}",
              flush=True)
        env = {**os.environ, "ADARL_JAX_WORKER": str(i)}
        procs.append(subprocess.Popen(cmd, env=env, preexec_fn=_pin(mine)))
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        raise
    codes = [p.returncode for p in procs]
    failed = [(i, c) for i, c in enumerate(codes) if c != 0]
    for i, c in failed:
        print(f"worker {i} (folds {','.join(map(str, shares[i]))}) failed with exit code {c}; "
              "finished folds are kept, rerun the command to resume", file=sys.stderr, flush=True)
    return failed[0][1] if failed else 0
