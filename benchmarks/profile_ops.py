"""Where one jitted `adarl` train step's time goes, XLA op by op: one JSON line.

  taskset -c 1 python benchmarks/profile_ops.py [--config quick] [--threads 1] [--steps 5]
      [--top 25] [--mode train|infer] [--set model.first_convs=direct]

The step is compiled as `bench_model.py train` compiles it (`implementations.jax_setup`, in a
process with the CLI training's allocator setting, `implementations.training_allocator`), run
`--warmup` times, timed `--steps` times, then run `--steps` more times under `jax.profiler`
with a Perfetto trace; each XLA op (fusion, convolution, library call) gets its time per step,
summed over the traced steps and divided by their number, and is named with the model code it
came from: the `op_name` of the optimised HLO (e.g. `jvp(ADARL)/domain/convs/block1/bn/
reduce_sum`; `transpose(jvp(...))` is the backward). `ops_share` is the listed ops' part of the
traced steps' op time. Under the profiler a step runs a little slower than untraced
(`step_s_median` is the untraced figure).
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import tempfile
import time

from implementations import jax_setup, random_batch, training_allocator
from measure import loadavg, log, machine_info

OP_NAME = re.compile(r'^\s*(?:ROOT )?%?([\w.\-]+) = .*?metadata=\{op_name="([^"]*)"', re.M)


def op_names(hlo_text: str) -> dict[str, str]:
    """{HLO instruction name: its op_name metadata} over the optimised module."""
    return {m.group(1): m.group(2).removeprefix("jit(train_step)/").removeprefix("jit(predict)/")
            for m in OP_NAME.finditer(hlo_text)}


def op_times(trace_dir: str, module: str) -> collections.Counter:
    """Microseconds per XLA op of `module` summed over the trace (Perfetto JSON events whose
    args name the HLO module and op)."""
    paths = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)
    if not paths:
        raise SystemExit(f"profile_ops: jax.profiler wrote no Perfetto trace under {trace_dir}")
    with gzip.open(paths[0]) as f:
        events = json.load(f)["traceEvents"]
    total = collections.Counter()
    for e in events:
        args = e.get("args") or {}
        if e.get("ph") == "X" and args.get("hlo_module") == module and "hlo_op" in args:
            total[args["hlo_op"]] += e["dur"]
    return total


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="quick")
    p.add_argument("--mode", choices=("train", "infer"), default="train")
    p.add_argument("--batch", type=int, default=0)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--threads", type=int, choices=(0, 1), default=0,
                   help="1: XLA:CPU on one thread (a worker's); 0: its default pool")
    p.add_argument("--set", action="append", default=[],
                   help="config override, e.g. model.first_convs=direct")
    args = p.parse_args(argv)
    if args.threads == 1:
        flags = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        os.environ["XLA_FLAGS"] = flags.strip()
    heap_resident = training_allocator()
    import jax

    from adarl_jax.config import apply_override, load_config
    from adarl_jax.host import available_cores

    config = load_config(args.config)
    if args.batch:
        config.optim.batch_size = args.batch
    for item in args.set:
        apply_override(config, item)
    b = config.optim.batch_size
    before = loadavg()
    run, info = jax_setup(config, random_batch(config, b), args.mode)
    for _ in range(args.warmup):
        run()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(args.steps):
                run()
        module = "jit_train_step" if args.mode == "train" else "jit_predict"
        per_op = op_times(trace_dir, module)
    if not per_op:
        raise SystemExit(f"profile_ops: the trace has no op of the module {module}")
    names = op_names(run.hlo_text())
    all_ms = sum(per_op.values()) / 1e3 / args.steps
    top = [{"op": op, "ms": round(us / 1e3 / args.steps, 3), "code": names.get(op, "")}
           for op, us in per_op.most_common(args.top)]
    out = {"bench": "profile_ops", "config": args.config, "mode": args.mode, "batch": b,
           "threads": 1 if args.threads == 1 else "xla default", "heap_resident": heap_resident,
           "cores": len(available_cores()),
           "overrides": args.set,
           "step_s_median": round(sorted(times)[len(times) // 2], 4), **info,
           "ops_ms_per_step": round(all_ms, 2), "ops_listed": len(top), "ops_total": len(per_op),
           "ops_share": round(sum(r["ms"] for r in top) / all_ms, 3) if all_ms else None,
           "top_ops": top, "loadavg_before": before, "loadavg_after": loadavg(),
           "machine": machine_info()}
    print(json.dumps(out))
    log(f"{args.mode} step {out['step_s_median'] * 1e3:.1f} ms; ops {all_ms:.1f} ms a step:")
    for r in top:
        log(f"  {r['ms']:7.2f} ms  {r['op']:28s} {r['code'][:90]}")
    return out


if __name__ == "__main__":
    main()
