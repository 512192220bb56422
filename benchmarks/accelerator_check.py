"""One bounded check of adarl-jax on a GPU or TPU, written as one JSON file.

  python benchmarks/accelerator_check.py CORPUS_DIR [--out accelerator_check.json] [--budget-s 450]
  python benchmarks/accelerator_check.py CORPUS_DIR --dry-run     # the same code paths on the CPU

Parts, in order, each skipped (and named under `skipped`) when the time budget left is too
short for it:
  device      what jax sees; without --dry-run, no GPU/TPU is an error (exit 2)
  jax         train and inference segments/s at the paper's input (configs/paper.py), batch 32
              and 256, float32 and bfloat16 (`model.dtype`), AOT compile time, peak device
              memory (`device.memory_stats()`, the process's peak so far)
  multi_fold  the vmapped all-fold step (`train_step.make_multi_fold_step`) against the same folds
              stepped one by one
  torch       the same as `jax` for benchmarks/torch_model.py, eager and torch.compile, when
              torch is importable (bfloat16 through autocast)
  loso        the paper config's EmoDB LOSO of adarl, backbone and domain_invariant through
              `adarl_jax.experiments.loso.run`, fold by fold (all variants of a fold, then the next fold) until
              the budget ends: wall time, WA/UA pooled and per-fold mean (`adarl_jax.report.report`)
The micro-benchmarks (jax, multi_fold, torch) share `--bench-share` of the budget; the LOSO
gets the rest. `--dry-run`: the smoke config, batches 8 and 16, two steps, one fold.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
VARIANTS = ("adarl", "backbone", "domain_invariant")
DTYPES = ("float32", "bfloat16")


class Budget:
    """Seconds left of a global budget; `fits(need)` says whether a part may start."""

    def __init__(self, total_s: float):
        self.total_s, self.t0 = total_s, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.total_s - self.elapsed()


def timed_steps(run, steps: int, max_s: float) -> list[float]:
    """One untimed warm-up call, then up to `steps` timed calls (fewer past `max_s`)."""
    run()
    times, t_end = [], time.perf_counter() + max_s
    while len(times) < steps and (not times or time.perf_counter() < t_end):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return times


def peak_device_bytes():
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def device_info(dry_run: bool) -> dict:
    import jax

    devices = jax.devices()
    info = {"backend": jax.default_backend(), "count": len(devices),
            "kind": devices[0].device_kind, "platform": devices[0].platform, "jax": jax.__version__}
    if not dry_run and info["backend"] == "cpu":
        raise SystemExit(
            f"accelerator_check: jax sees no GPU or TPU (jax.devices() = {devices}); install the "
            f"jax build for the accelerator (jax[cuda12] or jax[tpu]) or pass --dry-run")
    return info


def jax_throughput(config, mode: str, batch: int, dtype: str, args) -> dict:
    import implementations

    config = config.copy_and_resolve_references()
    config.model.dtype = dtype
    run, info = implementations.jax_setup(config, implementations.random_batch(config, batch), mode)
    times = timed_steps(run, args.steps, args.part_s)
    med = statistics.median(times)
    return {"segments_per_s": round(batch / med, 2), "step_s_median": round(med, 5),
            "steps": len(times), "compile_s": info["compile_s"],
            "peak_device_bytes": peak_device_bytes()}


def torch_throughput(config, mode: str, batch: int, dtype: str, compiled: bool, args) -> dict:
    import implementations
    import torch
    import torch_model

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    b = implementations.random_batch(config, batch)
    torch.manual_seed(0)
    model = torch_model.ADARL.from_config(config).to(dev, memory_format=torch.channels_last)
    x = torch.from_numpy(b["x"]).permute(0, 3, 1, 2).contiguous(
        memory_format=torch.channels_last).to(dev)
    cast = torch.autocast(dev.type, torch.bfloat16, enabled=dtype == "bfloat16")
    if mode == "train":
        o = config.optim
        opt = torch_model.make_optimizer(model, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum)
        step = torch_model.make_train_step(model, opt, compile=compiled, dynamic=False)
        labels = [torch.from_numpy(b[k]).long().to(dev) for k in ("emotion", "domain")]
        weight = torch.from_numpy(b["weight"]).to(dev)

        def run():
            with cast:
                step(x, *labels, weight).item()
    else:
        fwd = torch.compile(model.eval(), dynamic=False) if compiled else model.eval()

        def run():
            with torch.inference_mode(), cast:
                fwd(x)["emotion_logits"].float().sum().item()
    t = time.perf_counter()
    run()  # torch.compile compiles on the first call
    first = time.perf_counter() - t
    times = timed_steps(run, args.steps, args.part_s)
    med = statistics.median(times)
    return {"segments_per_s": round(batch / med, 2), "step_s_median": round(med, 5),
            "steps": len(times), "compile_s": round(first - med, 2) if compiled else None,
            "peak_device_bytes": torch.cuda.max_memory_allocated() if dev.type == "cuda" else None}


def grid(out: dict, name: str, budget: Budget, stop_at: float, measure, batches) -> None:
    """out[mode][dtype][batch] = measure(mode, batch, dtype), each while the budget allows."""
    for mode in ("train", "infer"):
        for dtype in DTYPES:
            for batch in batches:
                key = f"{name} {mode} {dtype} b{batch}"
                if budget.elapsed() > stop_at:
                    out.setdefault("skipped", []).append(f"{key}: micro-benchmark share spent")
                    continue
                try:
                    res = measure(mode, batch, dtype)
                except Exception as e:  # noqa: BLE001 (a failed part is reported, not fatal)
                    res = {"error": f"{type(e).__name__}: {e}"[:500]}
                    traceback.print_exc()
                out.setdefault(mode, {}).setdefault(dtype, {})[str(batch)] = res
                print(f"[{key}] {res}", file=sys.stderr, flush=True)


def multi_fold(config, folds: int, batch: int, args) -> dict:
    """The vmapped step over `folds` stacked states against `folds` single steps in a row."""
    import jax
    import numpy as np

    import implementations
    from adarl_jax.train.optim import learning_rate_schedule
    from adarl_jax.train.train_step import (create_train_state_from_config, make_multi_fold_step,
                                 make_train_step, stack_states)

    setups = [create_train_state_from_config(config, jax.random.key(f), 100) for f in range(folds)]
    model, _, tx = setups[0]
    step = make_train_step(model, tx, (1.0, 1.0, 0.5), learning_rate_schedule(config, 100))
    states = [state for _, state, _ in setups]
    batches = [implementations.random_batch(config, batch, seed=f) for f in range(folds)]
    stacked_batch = jax.device_put(jax.tree.map(lambda *xs: np.stack(xs), *batches))
    single_batches = jax.device_put(batches)
    multi = jax.jit(make_multi_fold_step(step), donate_argnums=0)
    single = jax.jit(step, donate_argnums=0)
    t = time.perf_counter()
    cell = [multi.lower(stack_states(states), stacked_batch).compile()]
    compile_multi = time.perf_counter() - t
    multi_state = [stack_states(states)]
    single_states = jax.device_put(jax.device_get(states))

    def run_multi():
        multi_state[0], m = cell[0](multi_state[0], stacked_batch)
        jax.block_until_ready(m)

    def run_single():
        for f in range(folds):
            single_states[f], m = single(single_states[f], single_batches[f])
        jax.block_until_ready(m)

    tm = statistics.median(timed_steps(run_multi, args.steps, args.part_s))
    ts = statistics.median(timed_steps(run_single, args.steps, args.part_s))
    return {"folds": folds, "batch_per_fold": batch, "vmapped_step_s": round(tm, 5),
            "one_by_one_s": round(ts, 5), "speedup": round(ts / tm, 3),
            "vmapped_compile_s": round(compile_multi, 2), "peak_device_bytes": peak_device_bytes()}


def loso(config, workdir: Path, budget: Budget, folds: list[int] | None) -> dict:
    """The three variants' LOSO through adarl_jax.experiments.loso, fold-major, while the budget lasts."""
    import adarl_jax.experiments.loso
    from adarl_jax.report import report

    t = time.perf_counter()
    dataset, all_folds, _ = adarl_jax.experiments.loso.prepare(config, workdir, None, progress=False)
    out = {"features_s": round(time.perf_counter() - t, 2), "folds_total": len(all_folds),
           "fold_s": []}
    results = []
    for i in folds if folds is not None else range(len(all_folds)):
        last = max(out["fold_s"], default=0.0)
        if budget.left() < last:
            out["stopped"] = f"budget: {len(out['fold_s'])} of {len(all_folds)} folds done"
            break
        t = time.perf_counter()
        results += adarl_jax.experiments.loso.run(config, workdir, folds=str(i), variants=list(VARIANTS), progress=False)
        out["fold_s"].append(round(time.perf_counter() - t, 2))
    out["wall_s"] = round(sum(out["fold_s"]) + out["features_s"], 2)
    out["variants"] = {}
    for v in VARIANTS:
        rs = [r for r in results if r.get("variant") == v]
        if rs:
            s = report.summarize(rs)
            out["variants"][v] = {k: s[k] for k in ("wa_pooled", "ua_pooled", "wa_fold_mean",
                                                    "ua_fold_mean", "n_utterances")}
            out["variants"][v]["folds"] = len(rs)
            out["variants"][v]["train_time_s"] = round(sum(r["train_time_s"] for r in rs), 2)
    return out


def configs(args):
    from adarl_jax.config import load_config

    extra = [f"data.corpus={args.corpus}", f"data.dir={args.data}"]
    if args.manifest:
        extra.append(f"data.manifest={args.manifest}")
    if args.dry_run:
        bench = load_config("smoke")
        run = load_config("smoke", extra + ["optim.epochs=1", "data.max_utterances=40"])
        return bench, run
    return load_config("paper"), load_config("paper", extra)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", help="the corpus folder (EmoDB's, or a CSV manifest's with --manifest)")
    p.add_argument("--corpus", default="emodb", help="data.corpus of the LOSO (default emodb)")
    p.add_argument("--manifest", default="", help="a CSV manifest (with --corpus csv)")
    p.add_argument("--out", default="accelerator_check.json")
    p.add_argument("--workdir", default="", help="the LOSO's workdir (default: beside --out)")
    p.add_argument("--budget-s", type=float, default=450.0, help="the whole check's time budget")
    p.add_argument("--bench-share", type=float, default=0.4,
                   help="share of the budget for the micro-benchmarks (the LOSO gets the rest)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--part-s", type=float, default=5.0, help="timed seconds per measurement, at most")
    p.add_argument("--folds", default="", help="LOSO folds, e.g. 0,1 (default: all)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if importable")
    p.add_argument("--dry-run", action="store_true",
                   help="the CPU, the smoke config, tiny sizes: checks the code paths only")
    args = p.parse_args(argv)
    if args.dry_run:
        args.steps, args.part_s, args.folds = 2, 1.0, args.folds or "0"
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    if args.dry_run:
        os.environ["JAX_PLATFORMS"] = "cpu"
    budget = Budget(args.budget_s)
    out = {"check": "accelerator", "dry_run": args.dry_run,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "budget_s": args.budget_s, "device": device_info(args.dry_run)}
    bench_config, run_config = configs(args)
    batches = (8, 16) if args.dry_run else (32, 256)
    stop_at = args.bench_share * args.budget_s
    out["input"] = [bench_config.frontend.n_bins, bench_config.frontend.n_frames, 3]
    out["jax"] = {}
    grid(out["jax"], "jax", budget, stop_at,
         lambda m, b, d: jax_throughput(bench_config, m, b, d, args), batches)
    out["multi_fold"] = _guarded(lambda: multi_fold(bench_config, 3 if args.dry_run else 10,
                                                    batches[0], args))
    out["torch"] = _torch_part(args, bench_config, budget, stop_at, batches)
    workdir = Path(args.workdir or Path(args.out).with_suffix("").as_posix() + "_loso")
    folds = [int(f) for f in args.folds.split(",")] if args.folds else None
    out["loso"] = _guarded(lambda: loso(run_config, workdir, budget, folds))
    out["loso"]["config"] = "smoke" if args.dry_run else "paper"
    out["elapsed_s"] = round(budget.elapsed(), 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({"out": str(args.out), "elapsed_s": out["elapsed_s"]}), flush=True)
    return out


def _guarded(fn) -> dict:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 (a failed part is reported, not fatal)
        traceback.print_exc()
        return {"error": f"{type(e).__name__}: {e}"[:500]}


def _torch_part(args, config, budget, stop_at, batches) -> dict:
    if args.no_torch:
        return {"skipped": "--no-torch"}
    try:
        import torch
    except ImportError:
        return {"skipped": "torch is not importable"}
    out = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    for name, compiled in (("eager", False), ("compile", True)):
        out[name] = {}
        grid(out[name], f"torch_{name}", budget, stop_at,
             lambda m, b, d: torch_throughput(config, m, b, d, compiled, args), batches)
    return out


if __name__ == "__main__":
    main()
