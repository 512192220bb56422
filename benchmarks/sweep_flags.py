"""The jax train step compiled under XLA CPU option sets, all in one process, interleaved.

  python benchmarks/sweep_flags.py [--flag-sets 'xla_a=true xla_b=3;xla_c=NAME'] [--config quick]
  python benchmarks/bench_model.py flags ...                  # the same

The options go to `lower().compile(compiler_options=...)`, the per-program form of XLA_FLAGS,
so every set and the default run round-robin under the same load. Prints one JSON line:
`speedup_vs_default` per set, `errors` for options the jaxlib rejects. The other options are
bench_model.py's (`--help` there).
"""

from __future__ import annotations

import sys

from implementations import header, jax_setup, load_config, random_batch
from measure import interleaved, loadavg, log, machine_info

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
    out = header(args, "xla_flags", config)
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
               loadavg_after=loadavg(), machine=machine_info())
    return out


if __name__ == "__main__":
    import bench_model

    bench_model.main(["flags", *sys.argv[1:]])
