"""Speed and memory of adarl-jax's `adarl` model against a plain PyTorch build of the same model.

  python benchmarks/bench_model.py all                  # everything below, one JSON line each
  python benchmarks/bench_model.py train   [--config paper] [--batch 32] [--steps 5]
  python benchmarks/bench_model.py infer   [--infer-batches 32,256 | --skip-256]
  python benchmarks/bench_model.py flops                # matmul peak, model FLOPs, XLA's count
  python benchmarks/bench_model.py peak                 # each implementation alone: process peak RSS
  python benchmarks/bench_model.py profile              # per-block times (profile_model.py)
  python benchmarks/bench_model.py flags                # XLA CPU option sets (sweep_flags.py)
  python benchmarks/bench_model.py table bench.jsonl    # the markdown table of `all`'s lines

Implementations (`--impls`): jax (the jitted adarl_jax train step / predict fn on a 1-device
mesh, donated state, batch already on the device), torch_eager (NCHW), torch_eager_cl
(channels_last), torch_compile (torch.compile, channels_last), torch_compile_nchw. Timed steps
are interleaved round-robin (the order rotating each round) so that load from other processes
hits every implementation alike; warm-up and compilation are excluded and reported apart; the
median step is reported (measure.py; the implementations are set up in implementations.py).
Peak memory of a step is the process's high-water mark during it
(reset before each step through /proc/self/clear_refs) and its rise over the RSS before it.
Every subcommand prints one JSON line on stdout; progress goes to stderr. See README.md here.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from implementations import (DEFAULT_IMPLS, JAX_IMPLS, TORCH_IMPLS, header, training_allocator,  # noqa: E402
                             import_torch, jax_setup, load_config, model_flops, random_batch,
                             selected_impls, setup)
from measure import (interleaved, loadavg, log, machine_info, matmul_peak,  # noqa: E402
                     mem_available_gb)


def run_mode(args, mode: str, batch_size: int, steps: int, peak=None) -> dict:
    """Builds every implementation for one (mode, batch), times them interleaved."""
    config = load_config(args)
    batch_np = random_batch(config, batch_size)
    runners, infos = {}, {}
    for impl in selected_impls(args):
        log(f"[{mode} b={batch_size}] setting up {impl}")
        runners[impl], infos[impl] = setup(impl, config, batch_np, mode)
    stats, setup_peak = interleaved(runners, steps, args.warmup)
    flops = model_flops(config)
    per_seg = flops["train_gflop_per_segment" if mode == "train" else "forward_gflop_per_segment"]
    res = {}
    for impl in runners:
        s = dict(stats[impl])
        info = dict(infos[impl])
        if "first_call_s" in info:  # torch.compile: compile time = first call minus a step
            info["compile_s"] = round(info.pop("first_call_s") - s["step_s_median"], 2)
        s.update(info)
        s["segments_per_s"] = round(batch_size / s["step_s_median"], 3)
        s["gflops"] = round(per_seg * batch_size / s["step_s_median"], 2)
        if peak:
            s["model_flop_utilisation"] = round(s["gflops"] / peak, 4)
        res[impl] = s
    ratios = {}
    if "jax" in res:
        for impl in res:
            if impl != "jax":
                ratios[f"jax_over_{impl}"] = round(res["jax"]["segments_per_s"] / res[impl]["segments_per_s"], 3)
    return {"batch": batch_size, "steps": steps, "impls": res, "ratios": ratios,
            "gflop_per_segment": round(per_seg, 4), "setup_peak_rss_gb": setup_peak}


def _with_matmul_peak(args, bench: str, body) -> dict:
    """The header, then `body(config, matmul peak GFLOP/s)`'s keys, the peak and the machine."""
    config = load_config(args)
    out = header(args, bench, config)
    selected_impls(args)
    peak = matmul_peak(reps=args.matmul_reps)
    out.update(body(config, peak["peak"]))
    out["matmul_peak_gflops"] = peak
    out.update(loadavg_after=loadavg(), machine=machine_info())
    return out


def cmd_train(args) -> dict:
    return _with_matmul_peak(args, "train_step", lambda config, peak: run_mode(
        args, "train", config.optim.batch_size, args.steps, peak))


def cmd_infer(args) -> dict:
    return _with_matmul_peak(args, "inference", lambda config, peak: infer_batches(args, config, peak))


def infer_batches(args, config, peak) -> dict:
    """Each inference batch that fits in the memory available, timed (`run_mode`)."""
    out = {"batches": {}, "skipped": {}}
    for b in _infer_batch_sizes(args):
        need = _infer_memory_estimate_gb(config, b)
        avail = mem_available_gb()
        if avail is not None and need > avail:
            out["skipped"][str(b)] = f"needs ~{need:.1f} GB per implementation, {avail} GB available"
            log(f"skipping inference batch {b}: {out['skipped'][str(b)]}")
            continue
        steps = args.steps if b <= 64 else max(2, args.steps // 2)  # big batches: fewer rounds
        out["batches"][str(b)] = run_mode(args, "infer", b, steps, peak)
    return out


def _infer_batch_sizes(args):
    bs = [int(b) for b in args.infer_batches.split(",") if b]
    return [b for b in bs if not (args.skip_256 and b == 256)]


def _infer_memory_estimate_gb(config, batch: int) -> float:
    # Measured: batch 256 at 400 x 300 peaks near 16 GB; scale with batch x pixels.
    pixels = config.frontend.n_bins * config.frontend.n_frames
    return 16.0 * batch / 256 * pixels / (400 * 300)


def cmd_flops(args) -> dict:
    config = load_config(args)
    b = config.optim.batch_size
    out = header(args, "flops", config)
    if "torch" in args.impls:
        import_torch(args)
    out["matmul_peak_gflops"] = matmul_peak(reps=args.matmul_reps)
    f = model_flops(config)
    out["analytic"] = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in f.items()}
    out["analytic"]["train_step_gflop"] = round(f["train_gflop_per_segment"] * b, 2)
    out["analytic"]["forward_batch_gflop"] = round(f["forward_gflop_per_segment"] * b, 2)
    # XLA's own count of the compiled programs (convolutions counted as XLA lowers them).
    batch_np = random_batch(config, b)
    _, train_info = jax_setup(config, batch_np, "train")
    _, infer_info = jax_setup(config, batch_np, "infer")
    out["xla_cost_analysis_gflop"] = {"train_step": train_info.get("xla_cost_gflop"),
                                      "forward_batch": infer_info.get("xla_cost_gflop")}
    out["batch"] = b
    out.update(machine=machine_info())
    return out


# ---------------------------------------------------------------------------------------------
# Subprocess-driven subcommands


def _child(args, sub: str, extra=()) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), sub, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--matmul-reps", str(args.matmul_reps),
           "--infer-batches", args.infer_batches, *extra]  # later options override earlier
    if args.config:
        cmd += ["--config", args.config]
    if args.batch:
        cmd += ["--batch", str(args.batch)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.skip_256:
        cmd.append("--skip-256")
    log("$ " + " ".join(cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not lines:
        return {"error": f"exit {p.returncode}", "cmd": " ".join(cmd[1:])}
    return json.loads(lines[-1])


def cmd_peak(args) -> dict:
    """Each implementation alone in a fresh process: the peak RSS a user of it would see."""
    out = {"bench": "peak_memory", "config": args.config, "batch": args.batch or None, "impls": {}}
    for impl in [s for s in args.impls.split(",") if s]:
        res = {}
        one = ["--impls", impl, "--steps", "1", "--warmup", "1", "--matmul-reps", "1"]
        tr = _child(args, "train", one)
        res["train"] = _peak_of(tr, impl)
        inf = _child(args, "infer", one)
        for b, r in (inf.get("batches") or {}).items():
            res[f"infer_b{b}"] = _peak_of(r, impl)
        for b, why in (inf.get("skipped") or {}).items():
            res[f"infer_b{b}"] = {"skipped": why}
        out["impls"][impl] = res
    return out


def _peak_of(res, impl):
    if not res or "error" in res:
        return res
    r = res["impls"][impl]
    return {"peak_rss_gb": r["peak_rss_gb"], "step_extra_rss_gb": r["step_extra_rss_gb"],
            "setup_peak_rss_gb": res["setup_peak_rss_gb"]}


def cmd_all(args) -> None:
    """Every benchmark, each in its own process, printing their JSON lines in turn."""
    for sub in ("flops", "train", "infer"):
        print(json.dumps(_child(args, sub, ["--impls", args.impls])), flush=True)
    if not args.skip_peak:
        print(json.dumps(_child(args, "peak", ["--impls", args.impls])), flush=True)
    features = HERE / "bench_features.py"
    if features.exists():
        log(f"$ {sys.executable} {features}")
        p = subprocess.run([sys.executable, str(features)], stdout=subprocess.PIPE, text=True)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        res = {"bench": "features", **json.loads(lines[-1])} if lines else \
            {"bench": "features", "error": f"exit {p.returncode}"}
        print(json.dumps(res), flush=True)
    else:
        print(json.dumps({"bench": "features", "skipped": "benchmarks/bench_features.py not found"}))


# ---------------------------------------------------------------------------------------------
# The README table from the JSON lines of `all`


def markdown_table(lines: list[dict]) -> str:
    by = {d.get("bench"): d for d in lines}
    train, infer, peak, flops = (by.get(k, {}) for k in ("train_step", "inference", "peak_memory", "flops"))
    impls = list((train.get("impls") or {}).keys())
    head = ["", *impls] + [f"jax / {i}" for i in impls if i != "jax"]
    rows = [head, ["---"] * len(head)]

    def row(label, get, ratio=None, fmt="{:.2f}"):
        vals = []
        for i in impls:
            try:
                vals.append(fmt.format(get(i)))
            except (KeyError, TypeError):
                vals.append("-")
        rs = [f"{ratio[f'jax_over_{i}']:.2f}x" if ratio and f"jax_over_{i}" in ratio else ""
              for i in impls if i != "jax"]
        rows.append([label, *vals, *rs])

    if train:
        t = train["impls"]
        row(f"train step, segments/s (batch {train['batch']})", lambda i: t[i]["segments_per_s"], train["ratios"])
        row("train step, s (median)", lambda i: t[i]["step_s_median"])
        row("train compile, s", lambda i: t[i]["compile_s"], fmt="{:.1f}")
        row("train, model FLOP utilisation", lambda i: 100 * t[i]["model_flop_utilisation"], fmt="{:.1f}%")
    for b, r in (infer.get("batches") or {}).items():
        row(f"inference, segments/s (batch {b})", lambda i, r=r: r["impls"][i]["segments_per_s"], r["ratios"])
    for b, r in (infer.get("batches") or {}).items():
        row(f"inference compile, s (batch {b})", lambda i, r=r: r["impls"][i]["compile_s"], fmt="{:.1f}")
    for mode in ("train", *[f"infer_b{b}" for b in (infer.get("batches") or {})]) if peak else ():
        row(f"peak RSS alone, GB ({mode})", lambda i, m=mode: peak["impls"][i][m]["peak_rss_gb"], fmt="{:.1f}")
    out = "\n".join("| " + " | ".join(r) + " |" for r in rows)
    notes = []
    if train:
        notes.append(f"input {' x '.join(map(str, train['input']))} (config `{train['config']}`), "
                     f"{train['threads']} threads, median of {train['steps']} interleaved steps; "
                     f"load average {train['loadavg_before']} before, {train['loadavg_after']} after")
        mm = train["matmul_peak_gflops"]
        notes.append(f"f32 2048 x 2048 matmul peak {mm['peak']} GFLOP/s (jax {mm['jax']}, numpy {mm['numpy']}"
                     + (f", torch {mm['torch']}" if "torch" in mm else "") + ")")
    if flops:
        a = flops["analytic"]
        notes.append(f"model: {a['forward_gflop_per_segment']:.3f} GFLOP forward, "
                     f"{a['train_gflop_per_segment']:.3f} GFLOP train per segment (analytic); XLA cost "
                     f"analysis: {flops['xla_cost_analysis_gflop']['train_step']} GFLOP per train step of "
                     f"{flops['batch']} (analytic {a['train_step_gflop']})")
    feat = by.get("features", {})
    if "jnp_over_scipy" in feat:
        notes.append(f"front end: jnp {feat['jnp_over_scipy']:.1f}x scipy, {feat['jnp_over_torch']:.1f}x torch.stft "
                     f"({feat.get('jnp_utt_s')} utterances/s)")
    return out + "\n\n" + "\n".join(f"- {n}" for n in notes)


# ---------------------------------------------------------------------------------------------


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("all", "train", "infer", "flops", "peak", "profile", "flags", "table"))
    p.add_argument("jsonl", nargs="?", help="table: a file of the JSON lines that `all` printed")
    p.add_argument("--config", default=None,
                   help="a name in configs/ or a path (default: paper, 400 x 300; with --quick: quick)")
    p.add_argument("--batch", type=int, default=0, help="train batch (default: the config's, 32)")
    p.add_argument("--steps", type=int, default=0, help="timed steps per implementation (default 5, quick 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per implementation after compiling")
    p.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                   help=f"comma-separated: {', '.join((*JAX_IMPLS, *TORCH_IMPLS))}")
    p.add_argument("--infer-batches", default="", help="comma-separated (default 32,256; quick: the batch)")
    p.add_argument("--skip-256", action="store_true", help="leave out the inference batch of 256")
    p.add_argument("--skip-peak", action="store_true", help="all: leave out the per-process peak runs")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default os.cpu_count())")
    p.add_argument("--matmul-reps", type=int, default=5)
    p.add_argument("--xla-flags", default="", help="appended to XLA_FLAGS before jax starts")
    p.add_argument("--flag-sets", default="",
                   help="flags: ';'-separated sets of space-separated xla_option=value to try")
    p.add_argument("--quick", action="store_true",
                   help="a development run: config 'quick' (80 x 60) unless --config, 3 steps, no batch 256")
    args = p.parse_args(argv)
    if args.config is None:
        args.config = "quick" if args.quick else "paper"
    args.steps = args.steps or (3 if args.quick else 5)
    if not args.infer_batches:
        args.infer_batches = str(args.batch or 32) if args.quick else f"{args.batch or 32},256"
    return args


def main(argv=None):
    args = parse(argv)
    # Before jax is imported: flags, and the CPU unless told otherwise (torch here is CPU-only).
    if args.xla_flags:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + args.xla_flags).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    # torch.compile's compile time from a cold cache, as jax's (which has no persistent cache
    # here): a fresh inductor cache per process, unless the caller names one.
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ and args.command not in ("all", "peak", "table"):
        cache = tempfile.mkdtemp(prefix="bench_inductor_")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
    sys.path.insert(0, str(REPO))
    if args.command == "all":  # each subcommand in a process of its own
        return cmd_all(args)
    if args.command == "table":
        lines = [json.loads(ln) for ln in Path(args.jsonl).read_text().splitlines() if ln.startswith("{")]
        return print(markdown_table(lines))
    args.heap_resident = training_allocator()
    from profile_model import cmd_profile
    from sweep_flags import cmd_flags

    fn = {"train": cmd_train, "infer": cmd_infer, "flops": cmd_flops, "peak": cmd_peak,
          "profile": cmd_profile, "flags": cmd_flags}[args.command]
    print(json.dumps(fn(args)), flush=True)


if __name__ == "__main__":
    main()
