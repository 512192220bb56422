"""Wall and CPU time of one real LOSO fold through `trainer.run_fold` (one JSON line).

  taskset -c 1 python benchmarks/bench_fold.py --data ../shared/data/emodb [--config quick]
      [--fold 0] [--variant adarl] [--trainer /tmp/old_trainer.py] [--label before]

The dataset is prepared (or loaded from its cache) in --workdir before the clock starts; the
fold trains in a fresh temporary folder, so nothing is resumed. `--trainer` imports another
copy of adarl_jax/train/trainer.py, to time two versions of the loop in the same conditions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> dict:
    from bench_host import load_trainer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--corpus", default="emodb")
    p.add_argument("--config", default="quick")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--variant", default="adarl")
    p.add_argument("--workdir", default="/tmp/bench_fold", help="where the dataset cache goes")
    p.add_argument("--trainer", default="")
    p.add_argument("--label", default="")
    args = p.parse_args(argv)
    from adarl_jax.experiments import loso
    from adarl_jax.config import load_config

    config = load_config(args.config, [f"data.corpus={args.corpus}", f"data.dir={args.data}",
                                       f"model.variant={args.variant}"])
    dataset, folds, _ = loso.prepare(config, args.workdir, str(args.fold), progress=False)
    trainer = load_trainer(args.trainer)
    with tempfile.TemporaryDirectory() as tmp:
        t, c = time.perf_counter(), time.process_time()
        result = trainer.run_fold(config, dataset, folds[0], Path(tmp) / "fold", progress=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    out = {"bench": "fold", "label": args.label, "trainer": args.trainer or "adarl_jax.train.trainer",
           "config": args.config, "variant": args.variant, "fold": args.fold,
           "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "steps": result["steps"],
           "test_ua": result["test"]["ua"], "test_wa": result["test"]["wa"],
           "selected_epoch": result["selected_epoch"]}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
