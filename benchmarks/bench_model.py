"""Speed and memory of adarl-jax's `adarl` model against a plain PyTorch build of the same model.

  python benchmarks/bench_model.py all                  # everything below, one JSON line each
  python benchmarks/bench_model.py train   [--config paper] [--batch 32] [--steps 5]
  python benchmarks/bench_model.py infer   [--infer-batches 32,256 | --skip-256]
  python benchmarks/bench_model.py flops                # matmul peak, model FLOPs, XLA's count
  python benchmarks/bench_model.py peak                 # each implementation alone: process peak RSS
  python benchmarks/bench_model.py profile              # per-block forward / fwd+bwd times
  python benchmarks/bench_model.py flags                # the jax train step under XLA CPU options
  python benchmarks/bench_model.py table bench.jsonl    # the markdown table of `all`'s lines

Implementations (`--impls`): jax (the jitted adarl_jax train step / predict fn on a 1-device
mesh, donated state, batch already on the device), torch_eager (NCHW), torch_eager_cl
(channels_last), torch_compile (torch.compile, channels_last), torch_compile_nchw. Timed steps
are interleaved round-robin (the order rotating each round) so that load from other processes
hits every implementation alike; warm-up and compilation are excluded and reported apart; the
median step is reported. Peak memory of a step is the process's high-water mark during it
(reset before each step through /proc/self/clear_refs) and its rise over the RSS before it.
Every subcommand prints one JSON line on stdout; progress goes to stderr. See README.md here.
"""

from __future__ import annotations

import argparse
import copy
import atexit
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GB = 1024 ** 3
# The jax implementations: config.model overrides of the default model (same function each).
JAX_IMPLS = {
    "jax": {},
    # the plain Flax model: nn.BatchNorm, nn.relu, nn.avg_pool
    "jax_plain": {"fused_bn_pool": False},
    # adarl's two pathways' block-1 convolutions as one (model.shared_first_conv; off by default)
    "jax_shared_conv": {"shared_first_conv": True},
    # bfloat16 compute, float32 params: the accelerator option, here on the CPU
    "jax_bf16": {"dtype": "bfloat16"},
}
TORCH_IMPLS = ("torch_eager", "torch_eager_cl", "torch_compile", "torch_compile_nchw")
DEFAULT_IMPLS = ("jax", "torch_eager", "torch_compile")
# XLA CPU option sets that `flags` tries by default (DebugOptions present in jaxlib 0.10.2);
# one set is space-separated name=value pairs, enum lists in their LIBRARY_FUSION_TYPE_* names.
DEFAULT_FLAG_SETS = (
    "xla_cpu_enable_fast_math=true",
    "xla_cpu_multi_thread_eigen=false",
    "xla_cpu_use_onednn=true",
    "xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    "xla_cpu_experimental_xnn_fusion_type=LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_ELTWISE,"
    "LIBRARY_FUSION_TYPE_REDUCE",
    "xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
    "xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION,"
    "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_ELTWISE,LIBRARY_FUSION_TYPE_REDUCE",
    "xla_cpu_experimental_onednn_fusion_type=LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_ELTWISE,"
    "LIBRARY_FUSION_TYPE_REDUCE",
)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Memory: the process's high-water mark, resettable on Linux


def _status_kb(field: str) -> int | None:
    try:
        m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def rss_gb() -> float:
    kb = _status_kb("VmRSS")
    if kb is None:
        import psutil

        return psutil.Process().memory_info().rss / GB
    return kb * 1024 / GB


def reset_peak() -> bool:
    """Sets the high-water mark to the current RSS (Linux >= 4.0); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_gb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: the lifetime peak (ru_maxrss is bytes on macOS)
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r / GB if sys.platform == "darwin" else r * 1024 / GB
    return kb * 1024 / GB


def machine_info() -> dict:
    import numpy as np

    cpu = platform.processor()
    try:
        cpu = re.search(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1)
    except (OSError, AttributeError):
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "numpy": np.__version__,
            "mem_available_gb": _mem_available_gb(), "xla_flags": os.environ.get("XLA_FLAGS", "")}
    if "jax" in sys.modules:
        import jax

        info.update(jax=jax.__version__, jax_backend=jax.default_backend())
    if "torch" in sys.modules:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def _mem_available_gb() -> float | None:
    kb = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M) \
        if Path("/proc/meminfo").exists() else None
    return round(int(kb.group(1)) * 1024 / GB, 1) if kb else None


# ---------------------------------------------------------------------------------------------
# Config, data, FLOPs


def load_config(args):
    from adarl_jax.config import load_config as load

    config = load(args.config)
    if args.batch:
        config.optim.batch_size = args.batch
    return config


def random_batch(config, batch_size: int, seed: int = 0) -> dict:
    import numpy as np

    from adarl_jax.config import input_shape

    rng = np.random.default_rng(seed)
    n_cls, n_dom = len(config.data.classes), len(config.data.genders)
    return {"x": rng.standard_normal((batch_size, *input_shape(config)), np.float32),
            "emotion": rng.integers(0, n_cls, batch_size).astype(np.int32),
            "domain": rng.integers(0, n_dom, batch_size).astype(np.int32),
            "weight": np.ones(batch_size, np.float32)}


def model_flops(config) -> dict:
    """Analytic FLOPs of the `adarl` model per segment (2 x MACs of convs and dense layers).

    A train step is forward + backward: the weight gradient costs one forward's worth, the
    input gradient another, except for block 1, whose input (the data) needs no gradient.
    """
    m = config.model
    h, w, c = config.frontend.n_bins, config.frontend.n_frames, 3
    blocks = []
    for features, (ph, pw) in zip(m.block_features, m.block_pools):
        macs = h * w * c * sum(k * k * f for f, k in zip(features, m.kernel_sizes))
        blocks.append(2 * macs)
        c = sum(features)
        h, w = h // ph, w // pw
    per_pathway = sum(blocks)
    hid, n_cls, n_dom, att = m.hidden, len(config.data.classes), len(config.data.genders), m.attention_hidden
    dense = 2 * (h * w * c * hid + hid * n_dom  # domain head
                 + h * att + att * h  # attention
                 + h * c + c * hid + hid * n_cls)  # channel-wise FC + emotion head
    forward = 2 * per_pathway + dense
    train = 3 * forward - 2 * blocks[0]  # no input gradient for block 1 of either pathway
    return {"forward_gflop_per_segment": forward / 1e9, "train_gflop_per_segment": train / 1e9,
            "conv_gflop_per_block_per_pathway": [b / 1e9 for b in blocks],
            "block1_share_of_forward": 2 * blocks[0] / forward, "f4_shape": [h, w, c]}


def matmul_peak(n: int = 2048, reps: int = 5) -> dict:
    """Best-of-reps f32 GFLOP/s of an n x n matmul in jax, numpy and (if loaded) torch."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    flop = 2 * n ** 3
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
    out = {}

    def best(fn):
        fn()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return round(flop / min(ts) / 1e9, 1)

    ja, jb = jnp.asarray(a), jnp.asarray(b)
    dot = jax.jit(jnp.dot)
    out["jax"] = best(lambda: dot(ja, jb).block_until_ready())
    out["numpy"] = best(lambda: a @ b)
    if "torch" in sys.modules:
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        out["torch"] = best(lambda: ta @ tb)
    out["peak"] = max(out.values())
    return out


# ---------------------------------------------------------------------------------------------
# The implementations: each setup returns (run, info); run() does one step and waits for it


def jax_setup(config, batch_np, mode: str, compiler_options: dict | None = None):
    import jax

    from adarl_jax import sharding
    from adarl_jax.config import input_shape
    from adarl_jax.model import build_model, init_variables
    from adarl_jax.optim import learning_rate_schedule, make_optimizer
    from adarl_jax.train import create_train_state, make_predict_fn, make_train_step

    config.model.variant = "adarl"
    mesh = sharding.make_mesh(1)
    model = build_model(config)
    variables = init_variables(model, input_shape(config), jax.random.key(0, impl="rbg"))
    t = time.perf_counter()
    if mode == "train":
        tx = make_optimizer(config, steps_per_epoch=100)
        weights = (config.loss.domain_weight, config.loss.emotion_weight, config.loss.center_weight)
        state = sharding.put_replicated(create_train_state(variables, tx, len(config.data.classes)), mesh)
        batch = jax.block_until_ready(sharding.put_batch(batch_np, mesh))
        step = sharding.jit_train_step(
            make_train_step(model, tx, weights, learning_rate_schedule(config, 100)), mesh)
        compiled = step.lower(state, batch).compile(compiler_options)
        cell = [state]

        def run():
            new_state, metrics = compiled(cell[0], batch)
            cell[0] = jax.block_until_ready(new_state)
            jax.block_until_ready(metrics)
    else:
        params = sharding.put_replicated(variables, mesh)
        x = jax.block_until_ready(sharding.put_batch({"x": batch_np["x"]}, mesh)["x"])
        compiled = sharding.jit_predict(make_predict_fn(model), mesh).lower(params, x).compile(
            compiler_options)

        def run():
            jax.block_until_ready(compiled(params, x))

    info = {"compile_s": round(time.perf_counter() - t, 2)}
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    if cost and cost.get("flops"):
        info["xla_cost_gflop"] = round(float(cost["flops"]) / 1e9, 2)
    return run, info


def torch_setup(config, batch_np, mode: str, impl: str):
    import torch

    import torch_model

    channels_last = impl in ("torch_eager_cl", "torch_compile")
    compiled = impl.startswith("torch_compile")
    torch.manual_seed(0)
    model = torch_model.ADARL.from_config(config)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.from_numpy(batch_np["x"]).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    if mode == "train":
        model.train()
        o = config.optim
        opt = torch_model.make_optimizer(model, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum)
        # dynamic=False: one static graph per shape, as jax compiles one program per shape.
        step = torch_model.make_train_step(model, opt, compile=compiled, dynamic=False)
        labels = [torch.from_numpy(batch_np[k]).long() for k in ("emotion", "domain")]
        weight = torch.from_numpy(batch_np["weight"])

        def run():
            step(x, *labels, weight).item()
    else:
        model.eval()
        fwd = torch.compile(model, dynamic=False) if compiled else model

        def run():
            with torch.inference_mode():
                fwd(x)["emotion_logits"].sum().item()

    info = {"channels_last": channels_last}
    if compiled:  # torch.compile is lazy: the first call compiles (timed here, minus a step)
        t = time.perf_counter()
        run()
        info["first_call_s"] = time.perf_counter() - t
    return run, info


def setup(impl, config, batch_np, mode):
    if impl in JAX_IMPLS:
        config = copy.deepcopy(config)
        config.model.update(JAX_IMPLS[impl])
        return jax_setup(config, batch_np, mode)
    if impl in TORCH_IMPLS:
        return torch_setup(config, batch_np, mode, impl)
    raise ValueError(f"unknown impl {impl!r}; known: {', '.join((*JAX_IMPLS, *TORCH_IMPLS))}")


def interleaved(runners: dict, steps: int, warmup: int) -> tuple[dict, float]:
    """Warm-up, then `steps` rounds over all runners in rotating order.

    Returns (per-runner stats, the process's peak RSS in GB over set-up and warm-up)."""
    for name, run in runners.items():
        for _ in range(warmup):
            t = time.perf_counter()
            run()
            log(f"  warm-up {name}: {time.perf_counter() - t:.2f} s")
    names = list(runners)
    times = {n: [] for n in names}
    peaks = {n: [] for n in names}
    setup_peak = peak_gb()  # set-up, compilation and warm-up, before the first reset
    resettable = reset_peak()
    for r in range(steps):
        for name in names[r % len(names):] + names[:r % len(names)]:
            reset_peak()
            before = rss_gb()
            t = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - t)
            peaks[name].append((peak_gb(), peak_gb() - before))
        log(f"  round {r + 1}/{steps}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names))
    out = {}
    for n in names:
        med = statistics.median(times[n])
        out[n] = {"step_s_median": round(med, 4), "step_s_min": round(min(times[n]), 4),
                  "step_s_all": [round(t, 4) for t in times[n]],
                  "peak_rss_gb": round(max(p for p, _ in peaks[n]), 2),
                  "step_extra_rss_gb": round(max(d for _, d in peaks[n]), 2)}
        if not resettable:
            out[n]["peak_rss_gb_is_process_lifetime"] = True
    return out, round(setup_peak, 2)


def _import_torch(args):
    import torch

    sys.path.insert(0, str(HERE))
    torch.set_num_threads(args.threads or os.cpu_count())
    return torch


def _impls(args):
    impls = [s for s in args.impls.split(",") if s]
    if any(i in TORCH_IMPLS for i in impls):
        _import_torch(args)
    return impls


def run_mode(args, mode: str, batch_size: int, steps: int, peak=None) -> dict:
    """Builds every implementation for one (mode, batch), times them interleaved."""
    config = load_config(args)
    batch_np = random_batch(config, batch_size)
    runners, infos = {}, {}
    for impl in _impls(args):
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


def _header(args, bench: str, config) -> dict:
    from adarl_jax.config import input_shape

    return {"bench": bench, "config": args.config, "input": list(input_shape(config)),
            "threads": args.threads or os.cpu_count(), "loadavg_before": _loadavg()}


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cmd_train(args) -> dict:
    config = load_config(args)
    out = _header(args, "train_step", config)
    _impls(args)
    peak = matmul_peak(reps=args.matmul_reps)
    out.update(run_mode(args, "train", config.optim.batch_size, args.steps, peak["peak"]))
    out["matmul_peak_gflops"] = peak
    out.update(loadavg_after=_loadavg(), machine=machine_info())
    return out


def cmd_infer(args) -> dict:
    config = load_config(args)
    out = _header(args, "inference", config)
    _impls(args)
    peak = matmul_peak(reps=args.matmul_reps)
    out["batches"], out["skipped"] = {}, {}
    for b in _infer_batches(args):
        need = _infer_memory_estimate_gb(config, b)
        avail = _mem_available_gb()
        if avail is not None and need > avail:
            out["skipped"][str(b)] = f"needs ~{need:.1f} GB per implementation, {avail} GB available"
            log(f"skipping inference batch {b}: {out['skipped'][str(b)]}")
            continue
        steps = args.steps if b <= 64 else max(2, args.steps // 2)  # big batches: fewer rounds
        out["batches"][str(b)] = run_mode(args, "infer", b, steps, peak["peak"])
    out["matmul_peak_gflops"] = peak
    out.update(loadavg_after=_loadavg(), machine=machine_info())
    return out


def _infer_batches(args):
    bs = [int(b) for b in args.infer_batches.split(",") if b]
    return [b for b in bs if not (args.skip_256 and b == 256)]


def _infer_memory_estimate_gb(config, batch: int) -> float:
    # Measured: batch 256 at 400 x 300 peaks near 16 GB; scale with batch x pixels.
    pixels = config.frontend.n_bins * config.frontend.n_frames
    return 16.0 * batch / 256 * pixels / (400 * 300)


def cmd_flops(args) -> dict:
    config = load_config(args)
    b = config.optim.batch_size
    out = _header(args, "flops", config)
    if "torch" in args.impls:
        _import_torch(args)
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


def parse_flag_set(text: str) -> dict:
    """'xla_a=true xla_b=3 xla_c=NAME' -> {'xla_a': True, 'xla_b': 3, 'xla_c': 'NAME'}."""
    out = {}
    for item in text.split():
        name, _, value = item.removeprefix("--").partition("=")
        low = value.lower()
        out[name] = (low == "true") if low in ("true", "false") else int(value) if value.isdigit() else value
    return out


def cmd_flags(args) -> dict:
    """The jax train step compiled with each XLA CPU option set, all in one process, interleaved.

    The options go to `lower().compile(compiler_options=...)`, the per-program form of
    XLA_FLAGS, so every variant and the default run round-robin under the same load.
    """
    config = load_config(args)
    out = _header(args, "xla_flags", config)
    sets = [f for f in (args.flag_sets.split(";") if args.flag_sets else DEFAULT_FLAG_SETS) if f.strip()]
    batch_np = random_batch(config, config.optim.batch_size)
    runners, infos, errors = {}, {}, {}
    for name, opts in [("default", {})] + [(f, parse_flag_set(f)) for f in sets]:
        log(f"[flags] compiling: {name}")
        try:
            runners[name], infos[name] = jax_setup(config, batch_np, "train", opts)
        except Exception as e:  # an option this jaxlib does not know: report, go on
            errors[name] = f"{type(e).__name__}: {str(e)[:300]}"
    stats, _ = interleaved(runners, args.steps, args.warmup)
    base = stats["default"]["step_s_median"]
    results = [{"xla_options": name, "step_s_median": stats[name]["step_s_median"],
                "step_s_all": stats[name]["step_s_all"], "compile_s": infos[name]["compile_s"],
                "speedup_vs_default": round(base / stats[name]["step_s_median"], 3)}
               for name in runners]
    out.update(batch=config.optim.batch_size, steps=args.steps, results=results, errors=errors,
               loadavg_after=_loadavg(), machine=machine_info())
    return out


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
# Profile: where the forward and backward time goes, block by block


def cmd_profile(args) -> dict:
    """Per-block times of one pathway (jax, torch NCHW, torch channels_last), block 1 split into
    its convolutions and BatchNorm + ReLU + pool, block 1 of both pathways as 4 convs vs one
    fused conv, and the whole jax forward / train step for the shares."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from adarl_jax.model.layers import MultiScaleConvBlock

    config = load_config(args)
    m = config.model
    b = config.optim.batch_size
    impls = _impls(args)
    torch = sys.modules.get("torch")
    out = _header(args, "profile", config)
    rng = np.random.default_rng(0)

    def timeit(fn, reps=args.steps):
        fn()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return round(statistics.median(ts), 4)

    h, w, c = config.frontend.n_bins, config.frontend.n_frames, 3
    blocks = []
    for i, (features, pool) in enumerate(zip(m.block_features, m.block_pools)):
        x = rng.standard_normal((b, h, w, c), np.float32)
        xj = jnp.asarray(x)
        row = {"block": i + 1, "input": [h, w, c]}
        block = MultiScaleConvBlock(tuple(features), tuple(m.kernel_sizes), tuple(pool))
        variables = block.init(jax.random.key(0, impl="rbg"), x[:1], train=False)
        fwd = jax.jit(lambda v, x: block.apply(v, x, train=False))
        row["jax_fwd_s"] = timeit(lambda: fwd(variables, xj).block_until_ready())

        def loss(params, x, stats=variables["batch_stats"]):
            y, _ = block.apply({"params": params, "batch_stats": stats}, x, train=True,
                               mutable=["batch_stats"])
            return jnp.sum(y * y)

        # Block 1's input is the data: no input gradient, as in the train step.
        grad = jax.jit(jax.grad(loss, argnums=(0,) if i == 0 else (0, 1)))
        row["jax_fwd_bwd_s"] = timeit(lambda: jax.block_until_ready(grad(variables["params"], xj)))
        if i == 0:
            x1 = xj
            row.update(_profile_block1_split(variables, xj, features, pool, m.kernel_sizes, timeit))
        if torch is not None and any(n.startswith("torch") for n in impls):
            row.update(_profile_torch_block(torch, x, c, features, pool, m.kernel_sizes, i > 0, timeit))
        blocks.append(row)
        log(f"  {row}")
        c = sum(features)
        h, w = h // pool[0], w // pool[1]
    out["batch"] = b
    out["per_pathway_blocks"] = blocks
    whole = [k for k in blocks[0] if re.fullmatch(r"(jax|torch|torch_cl)_fwd(_bwd)?_s", k)]
    out["block1_share_of_pathway"] = {k: round(blocks[0][k] / sum(r[k] for r in blocks), 3) for k in whole}
    out["block1_both_pathways"] = _profile_block1_fused(x1, blocks[0]["input"], m.block_features[0],
                                                        m.kernel_sizes, timeit)
    # The whole model, for the shares: the jitted predict fn and train step.
    batch_np = random_batch(config, b)
    run_fwd, _ = jax_setup(config, batch_np, "infer")
    run_step, _ = jax_setup(config, batch_np, "train")
    out["jax_model_forward_s"] = timeit(run_fwd)
    out["jax_train_step_s"] = timeit(run_step)
    out["jax_block1_x2_share"] = {
        "of_forward": round(2 * blocks[0]["jax_fwd_s"] / out["jax_model_forward_s"], 3),
        "of_train_step": round(2 * blocks[0]["jax_fwd_bwd_s"] / out["jax_train_step_s"], 3)}
    out["note"] = ("block times are one pathway's (the model has two of the same shapes); fwd = "
                   "inference mode; fwd_bwd = train-mode forward + parameter gradients (+ input "
                   "gradient after block 1) of sum(y^2)")
    out.update(loadavg_after=_loadavg(), machine=machine_info())
    return out


def _profile_block1_split(variables, xj, features, pool, kernel_sizes, timeit) -> dict:
    """Block 1's parallel convs (each, and both) vs its BatchNorm + ReLU + average pool."""
    import jax
    import jax.numpy as jnp

    p = variables["params"]
    dn = ("NHWC", "HWIO", "NHWC")
    conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=dn)
    kernels = [p[f"conv{k}x{k}"]["kernel"] for k in kernel_sizes]
    convs = jax.jit(lambda x, ks: jnp.concatenate([conv(x, k) for k in ks], -1))
    row = {"jax_fwd_convs_only_s": timeit(lambda: convs(xj, kernels).block_until_ready())}
    for k, kern in zip(kernel_sizes, kernels):
        one = jax.jit(conv)
        row[f"jax_fwd_conv{k}x{k}_only_s"] = timeit(lambda: one(xj, kern).block_until_ready())
    y = convs(xj, kernels)
    pool = tuple(pool)

    def bn_relu_pool(y, scale, bias):  # train-mode BatchNorm (batch statistics), as in the step
        mean = y.mean((0, 1, 2))
        var = jnp.mean(jnp.square(y - mean), (0, 1, 2))
        z = jax.nn.relu((y - mean) * jax.lax.rsqrt(var + 1e-5) * scale + bias)
        return jax.lax.reduce_window(z, 0.0, jax.lax.add, (1, *pool, 1), (1, *pool, 1),
                                     "VALID") / (pool[0] * pool[1])

    scale, bias = p["bn"]["scale"], p["bn"]["bias"]
    fwd = jax.jit(bn_relu_pool)
    ct = jax.random.normal(jax.random.key(0, impl="rbg"), jax.eval_shape(fwd, y, scale, bias).shape)
    grad = jax.jit(jax.grad(lambda y, s, b, ct: jnp.vdot(bn_relu_pool(y, s, b), ct), argnums=(0, 1, 2)))
    row["jax_fwd_bn_relu_pool_only_s"] = timeit(lambda: fwd(y, scale, bias).block_until_ready())
    row["jax_fwd_bwd_bn_relu_pool_only_s"] = timeit(lambda: jax.block_until_ready(grad(y, scale, bias, ct)))

    from adarl_jax.model.bn_relu_pool import batch_norm_relu_pool  # the fused op the model uses

    fused = lambda y, s, b: batch_norm_relu_pool(y, s, b, pool, y.dtype)[0]
    fused_fwd = jax.jit(fused)
    fused_grad = jax.jit(jax.grad(lambda y, s, b, ct: jnp.vdot(fused(y, s, b), ct), argnums=(0, 1, 2)))
    row["jax_fwd_bn_relu_pool_fused_s"] = timeit(lambda: fused_fwd(y, scale, bias).block_until_ready())
    row["jax_fwd_bwd_bn_relu_pool_fused_s"] = timeit(
        lambda: jax.block_until_ready(fused_grad(y, scale, bias, ct)))
    return row


def _profile_block1_fused(xj, input_hwc, features, kernel_sizes, timeit) -> dict:
    """Block 1 of both pathways reads the same input: its 4 convs vs one 5x5 conv whose
    outputs hold all four (the 3x3 kernels zero-padded to 5x5), forward and weight gradient."""
    import jax
    import jax.numpy as jnp

    dn = ("NHWC", "HWIO", "NHWC")
    conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=dn)
    c = input_hwc[2]
    kmax = max(kernel_sizes)
    kernels = [jnp.full((k, k, c, f), 0.1, jnp.float32) for f, k in zip(features, kernel_sizes)] * 2

    def separate(ks, x):
        return jnp.concatenate([conv(x, k) for k in ks], -1)

    def fused(ks, x):
        pad = lambda k: jnp.pad(k, [((kmax - k.shape[0]) // 2,) * 2] * 2 + [(0, 0)] * 2)
        return conv(x, jnp.concatenate([pad(k) for k in ks], -1))

    shape = jax.eval_shape(separate, kernels, xj).shape
    ct = jax.random.normal(jax.random.key(0, impl="rbg"), shape)  # a cotangent, passed in
    row = {}
    for name, fn in (("4_convs", separate), ("1_fused_conv", fused)):
        f = jax.jit(fn)
        g = jax.jit(jax.grad(lambda ks, x, ct, fn=fn: jnp.vdot(fn(ks, x), ct)))
        row[f"{name}_fwd_s"] = timeit(lambda: f(kernels, xj).block_until_ready())
        row[f"{name}_weight_grad_s"] = timeit(lambda: jax.block_until_ready(g(kernels, xj, ct)))
    return row


def _profile_torch_block(torch, x, c, features, pool, kernel_sizes, input_grad, timeit) -> dict:
    import torch_model

    row = {}
    for cl in (False, True):
        fmt = torch.channels_last if cl else torch.contiguous_format
        tb = torch_model.MultiScaleConvBlock(c, features, kernel_sizes, pool).to(memory_format=fmt)
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
        xt.requires_grad_(input_grad)
        tag = "torch_cl" if cl else "torch"

        def fwd():
            with torch.inference_mode():
                tb.eval()(xt).sum().item()

        def fwd_bwd():
            tb.train()
            tb.zero_grad(set_to_none=True)
            y = tb(xt)
            (y * y).sum().backward()

        row[f"{tag}_fwd_s"] = timeit(fwd)
        row[f"{tag}_fwd_bwd_s"] = timeit(fwd_bwd)
        if not input_grad:  # block 1: its BatchNorm + ReLU + pool alone, input gradient included
            y = torch.cat([conv(xt) for conv in tb.convs], 1).detach().requires_grad_(True)

            def bn_fwd_bwd():
                y.grad = None
                tb.zero_grad(set_to_none=True)
                out = torch.nn.functional.avg_pool2d(torch.relu(tb.bn(y)), tb.pool, tb.pool)
                out.backward(torch.ones_like(out))

            row[f"{tag}_fwd_bwd_bn_relu_pool_only_s"] = timeit(bn_fwd_bwd)
    return row


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
    if args.command == "all":
        return cmd_all(args)
    if args.command == "table":
        lines = [json.loads(ln) for ln in Path(args.jsonl).read_text().splitlines() if ln.startswith("{")]
        return print(markdown_table(lines))
    fn = {"train": cmd_train, "infer": cmd_infer, "flops": cmd_flops, "peak": cmd_peak,
          "profile": cmd_profile, "flags": cmd_flags}[args.command]
    print(json.dumps(fn(args)), flush=True)


if __name__ == "__main__":
    main()
