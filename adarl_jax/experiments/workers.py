"""Folds in parallel worker processes on one machine: `train`/`reproduce --workers N`.

XLA:CPU spreads one small model's step poorly over cores, so N single-core processes that
each train their own folds go nearly N times as fast as one process on N cores. The parent
prepares the spectrogram cache (so workers never race to write it) and runs the baselines,
then starts N copies of the same command, pinned to their own cores. Each goes through every
(variant, fold) of the job, the variant with the most parameters first (a proxy for the
longest folds), and trains the ones it is first to claim (`Claims`: a file created atomically
per task), so the workers end within about one fold of each other whatever the folds cost.
They write into the one workdir exactly as separate `--folds` jobs do; finished folds stay
finished whatever happens to the others. The parent holds the folds'
locks (adarl_jax.workdir.locks) and names itself to the workers, which inherit them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from pathlib import Path

from adarl_jax.host import available_cores
from adarl_jax.workdir import locks

__all__ = ["Claims", "available_cores", "default_workers", "worker_argv", "run_workers"]


def default_workers(n_tasks: int) -> int:
    """One worker per core on a CPU-only host (at most one per task, a variant's fold); 1 with
    an accelerator, where one process fills the device."""
    import jax

    if jax.default_backend() != "cpu":
        return 1
    return max(1, min(len(available_cores()), n_tasks))


class Claims:
    """The tasks (variant, fold) of one `--workers` job, each trained by the worker that claims
    it first: `take` creates `<folder>/<variant>.fold_<kk>` atomically (O_CREAT | O_EXCL, the
    claimant's pid and host inside) and says whether this process did. The parent makes a
    folder of its own under `W/.locks` and removes it once its workers have ended; a claimed
    fold that did not finish runs again next time."""

    def __init__(self, folder):
        self.folder = Path(folder)

    @classmethod
    def for_parent(cls, workdir) -> "Claims":
        """A new, empty claims folder in `workdir`, unique to this parent (host, pid, random)."""
        parent = Path(workdir) / locks.LOCK_DIR
        parent.mkdir(parents=True, exist_ok=True)
        me = locks.me()
        return cls(tempfile.mkdtemp(prefix=f"claims_{me['host']}_{me['pid']}_", dir=parent))

    def take(self, variant: str, fold: int) -> bool:
        path = self.folder / f"{variant}.fold_{int(fold):02d}"
        try:
            return locks.create_exclusive(path, {**locks.me(), "since": time.time()})
        except FileNotFoundError:
            raise RuntimeError(f"the claims folder {self.folder} is gone: the parent of this "
                               "worker has ended or another run removed it") from None

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def worker_argv(argv: list[str], folds: list[int], claims: str) -> list[str]:
    """The parent's command line for one worker: the job's folds, the claims folder (`Claims`),
    one worker, no baselines (the
    parent ran them), no --force-new-config (the parent has already set the new config up),
    no --final, --final-out, --ensemble or --no-late-fusion (the parent trains the final model once every fold is
    done), no report (--no-report: the parent writes the one report of all the folds)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        key = a.split("=", 1)[0]
        if key in ("--folds", "--workers", "--baselines", "--final-out", "--ensemble", "--claims"):
            skip = "=" not in a
            continue
        if key in ("--force-new-config", "--final", "--overwrite-final", "--no-report",
                   "--no-late-fusion"):
            continue
        out.append(a)
    out += ["--folds", ",".join(map(str, folds)), "--claims", str(claims), "--workers", "1",
            "--no-report"]
    return out + (["--baselines", "none"] if "reproduce" in argv else [])


def _pin(pid: int, cores: list[int]) -> None:
    """Pins a just-started process (before its Python has started any thread; threads it
    starts later inherit the mask). Not in preexec_fn: forking a process that runs JAX's
    threads is unsafe, and Python warns."""
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(pid, cores)
        except ProcessLookupError:  # it already ended; its exit code tells why
            pass


def _forward(stream, done: threading.Event) -> None:
    """Copies a worker's output to ours, line by line; sets `done` at end of file (the worker
    has exited: its end of the pipe closes with it, however its exit status is collected)."""
    for line in iter(stream.readline, b""):
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
    done.set()


def run_workers(argv: list[str], folds: list[int], n: int, workdir) -> int:
    """Runs the command `argv` (adarl-jax arguments, without the program) in n workers over
    `folds` of `workdir`, each task to the worker that claims it first (`Claims`); returns 0
    when all succeed, else the first failing worker's exit code (after every worker has ended,
    so that no finished fold is lost). The caller should still check that every fold finished:
    an exit status can be lost if a library reaps child processes."""
    n = max(1, n)
    cores = available_cores()
    per = max(1, len(cores) // n)
    claims = Claims.for_parent(workdir)
    procs, ends = [], []
    try:
        for i in range(n):
            mine = cores[i * per:(i + 1) * per] or cores
            cmd = [sys.executable, "-m", "adarl_jax.cli", *worker_argv(argv, folds, claims.folder)]
            print(f"worker {i}: on core(s) {','.join(map(str, mine))}, the next unclaimed fold",
                  flush=True)
            env = {**os.environ, "ADARL_JAX_WORKER": str(i), locks.PARENT_ENV: locks.parent_marker()}
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            _pin(proc.pid, mine)
            done = threading.Event()
            threading.Thread(target=_forward, args=(proc.stdout, done), daemon=True).start()
            procs.append(proc)
            ends.append(done)
        while not all(e.is_set() for e in ends):
            time.sleep(0.5)
    except BaseException:  # interrupted, or a worker failed to start: the others stop too
        for p in procs:    # (each releases its locks)
            if p.poll() is None:
                p.terminate()
        raise
    finally:
        codes = [p.wait() for p in procs]
        claims.clear()
    failed = [(i, c) for i, c in enumerate(codes) if c != 0]
    for i, c in failed:
        print(f"worker {i} failed with exit code {c}; finished folds are kept, rerun the "
              "command to resume", file=sys.stderr, flush=True)
    return failed[0][1] if failed else 0
