"""Where one real LOSO fold's time goes (`trainer.run_fold`): one JSON line.

  taskset -c 1 python benchmarks/bench_fold.py --data ../shared/data/emodb [--config quick]
      [--fold 0] [--variant adarl] [--set optim.train_steps=100] [--trainer /tmp/old_trainer.py]
      [--label before] [--predictions out.json]

The dataset is prepared (or loaded from its cache) in --workdir, then the fold trains in a
fresh temporary folder, so nothing is resumed. The compilation cache is set up as the CLI does
(ADARL_JAX_COMPILATION_CACHE: a folder, or 'off'). `--trainer` imports another copy of
adarl_jax/train/trainer.py, to time two versions of the loop in the same conditions;
`--predictions` writes the fold's per-utterance test predictions, to compare two versions.

The line's `phases` split the process's wall time (from its start to the fold's end) into
  startup     interpreter, imports, jax's backend and the compilation cache set-up
  data        loso.prepare: the corpus, the spectrogram cache, the folds
  compile     tracing, lowering and XLA compilation (or a persistent-cache read), wherever
              it happens (jax.monitoring's compile events), taken out of the phase it fell in
  train_steps the epoch loop's steps (dispatch and compute) and the epoch-end fetch of the
              metrics (finish_epoch)
  host        host work between steps: gathering each batch and placing it on the devices
  eval        validation each epoch and the selected model's test and validation inference
  checkpoint  checkpoint writes, waits and the selected model's restore, as far as they
              hold up the loop (orbax writes in the background)
  other       the rest of run_fold: model and state set-up, metrics.jsonl, the result record
each as {wall_s, sys_s, user_s, minflt} (wall excludes the compile inside it; sys, user and
minor page faults are the whole process's over the phase, background threads included).
`epochs` is how many epochs the fold trained; `steps` the selected model's step (its
epoch's end), not the steps trained: a fold that stops early trains past it, so compare two
versions' phases with `--set train.patience_fraction=0` (or per epoch).
`compiles` counts XLA compilations and persistent compilation cache hits and misses.
`process` holds the totals of the whole process (getrusage), `sys_share` = sys / (user + sys).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PHASES = ("startup", "data", "compile", "train_steps", "host", "eval", "checkpoint", "other")
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc; 0.0 elsewhere)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _usage() -> tuple[float, float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_stime, r.ru_utime, r.ru_minflt


class Phases:
    """Exclusive wall time, system and user CPU time and minor faults per named phase.

    Phases nest (a stack): the time of an inner phase is not counted in the outer one, and
    compile time reported by jax.monitoring is moved from the running phase to 'compile'."""

    def __init__(self):
        self.totals = {p: [0.0, 0.0, 0.0, 0] for p in PHASES}
        self.stack: list[list] = []  # [name, start usage, compile seconds inside]
        self.compiles = {"backend_compiles": 0, "backend_compile_s": 0.0, "cache_hits": 0,
                         "cache_misses": 0}

    def on_count(self, event: str, **_) -> None:
        key = event.rsplit("/", 1)[-1]
        if key in self.compiles:
            self.compiles[key] += 1

    def on_event(self, event: str, duration: float, **_) -> None:
        if event == COMPILE_EVENTS[-1]:
            self.compiles["backend_compiles"] += 1
            self.compiles["backend_compile_s"] = round(self.compiles["backend_compile_s"] + duration, 3)
        if event in COMPILE_EVENTS:
            self.totals["compile"][0] += duration
            if self.stack:
                self.stack[-1][2] += duration

    def _add(self, name: str, start, end, compile_s: float = 0.0) -> None:
        t = self.totals[name]
        t[0] += end[0] - start[0] - compile_s
        for i in (1, 2, 3):
            t[i] += end[i] - start[i]

    @contextlib.contextmanager
    def phase(self, name: str):
        now = _usage()
        if self.stack:  # the outer phase pauses
            outer = self.stack[-1]
            self._add(outer[0], outer[1], now, outer[2])
            outer[2] = 0.0
        self.stack.append([name, now, 0.0])
        try:
            yield
        finally:
            name_, start, compile_s = self.stack.pop()
            end = _usage()
            self._add(name_, start, end, compile_s)
            if self.stack:
                self.stack[-1][1] = end

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self.phase(name):
                return fn(*args, **kwargs)
        return timed

    def wrap_generator(self, name: str, gen_fn):
        """Each next() of the generator counts as `name`."""
        @functools.wraps(gen_fn)
        def timed(*args, **kwargs):
            it = gen_fn(*args, **kwargs)
            while True:
                with self.phase(name):
                    try:
                        item = next(it)
                    except StopIteration:
                        return
                yield item
        return timed

    def report(self) -> dict:
        return {p: {"wall_s": round(w, 3), "sys_s": round(s, 3), "user_s": round(u, 3),
                    "minflt": int(f)} for p, (w, s, u, f) in self.totals.items()}


def instrument(phases: Phases, trainer) -> None:
    """Routes the fold's work through `phases` by wrapping the functions run_fold calls."""
    from adarl_jax.train import epochs, sharding
    from adarl_jax.train.checkpoint import FoldCheckpointer

    epochs.host_batches = phases.wrap_generator("host", epochs.host_batches)
    sharding.put_batch = phases.wrap("host", sharding.put_batch)
    for cls in (epochs.StepLoop, epochs.ScanLoop):
        cls.__call__ = phases.wrap("train_steps", cls.__call__)
    trainer.finish_epoch = phases.wrap("train_steps", trainer.finish_epoch)
    trainer.utterance_predictions = phases.wrap("eval", trainer.utterance_predictions)
    for name in ("save", "wait", "close", "restore"):
        setattr(FoldCheckpointer, name, phases.wrap("checkpoint", getattr(FoldCheckpointer, name)))


def main(argv=None) -> dict:
    phases = Phases()
    start = _usage()
    # the process's life so far (interpreter start-up) is start-up; its CPU time and faults
    # are in getrusage already
    phases.stack.append(["startup", (start[0] - process_age_s(), 0.0, 0.0, 0), 0.0])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--corpus", default="emodb")
    p.add_argument("--config", default="quick")
    p.add_argument("--set", action="append", default=[], help="config override, repeatable")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--variant", default="adarl")
    p.add_argument("--workdir", default="/tmp/bench_fold", help="where the dataset cache goes")
    p.add_argument("--trainer", default="")
    p.add_argument("--label", default="")
    p.add_argument("--predictions", default="", help="write the test predictions here (JSON)")
    p.add_argument("--cache-min-compile-s", type=float, default=None,
                   help="the persistent cache's jax_persistent_cache_min_compile_time_secs "
                        "(default: the CLI's)")
    args = p.parse_args(argv)

    import jax
    jax.monitoring.register_event_duration_secs_listener(phases.on_event)
    jax.monitoring.register_event_listener(phases.on_count)
    from bench_host import load_trainer
    from adarl_jax.experiments import loso
    from adarl_jax.config import load_config
    from adarl_jax.cli.runtime import setup_runtime

    setup_runtime(argparse.Namespace())
    if args.cache_min_compile_s is not None:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", args.cache_min_compile_s)
    jax.devices()
    name, start, _ = phases.stack.pop()
    phases._add(name, start, _usage())

    config = load_config(args.config, [f"data.corpus={args.corpus}", f"data.dir={args.data}",
                                       f"model.variant={args.variant}", *args.set])
    with phases.phase("data"):
        dataset, folds, _ = loso.prepare(config, args.workdir, str(args.fold), progress=False)
    trainer = load_trainer(args.trainer)
    instrument(phases, trainer)
    with tempfile.TemporaryDirectory() as tmp:
        t, c = time.perf_counter(), time.process_time()
        with phases.phase("other"):
            result = trainer.run_fold(config, dataset, folds[0], Path(tmp) / "fold", progress=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    if args.predictions:
        Path(args.predictions).write_text(json.dumps(result["utterances"]))
    r = resource.getrusage(resource.RUSAGE_SELF)
    out = {"bench": "fold", "label": args.label, "trainer": args.trainer or "adarl_jax.train.trainer",
           "config": args.config, "set": args.set, "variant": args.variant, "fold": args.fold,
           "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "epochs": result["epochs"],
           "steps": result["steps"],
           "test_ua": result["test"]["ua"], "test_wa": result["test"]["wa"],
           "selected_epoch": result["selected_epoch"],
           "phases": phases.report(), "compiles": phases.compiles,
           "process": {"wall_s": round(process_age_s(), 2), "user_s": round(r.ru_utime, 2),
                       "sys_s": round(r.ru_stime, 2), "minflt": r.ru_minflt,
                       "majflt": r.ru_majflt, "max_rss_mb": round(r.ru_maxrss / 1024, 1),
                       "sys_share": round(r.ru_stime / max(r.ru_utime + r.ru_stime, 1e-9), 3)},
           "env": {k: v for k, v in os.environ.items()
                   if k.startswith(("MALLOC_", "LD_PRELOAD", "ADARL_JAX_", "XLA_FLAGS"))}}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
