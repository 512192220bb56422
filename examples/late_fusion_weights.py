"""The late fusion's weights, judged on validation speakers: the CNN's weight and the members
beside it, over the seeds of each corpus (RESULTS.md, "The late fusion's weights, and a lone
recording's statistics").

Two places a fused model weighs its members (adarl_jax.report.late_fusion,
adarl_jax.inference.late_fusion): where each speaker brings its own statistics (the LOSO row:
adarl + the per-speaker eGeMAPS and ComParE SVMs) and where a small speaker group or
`predict`'s default is scored (adarl under the statistics a user has + the globally
standardised SVMs). Both use equal weights. For each corpus (a name and its seed workdirs,
each a finished `reproduce` of adarl with the baselines), this prints per candidate:

  loso  w      (w p_adarl + p_egemaps + p_compare) / (w + 2), per-speaker SVMs: the 3-seed
               mean of the mean fold UA (and pooled UA, mean ± sd over seeds)
  small w      the same with the global SVMs, under each of --modes (the protocol of
               late_fusion_statistics.py; 5 draws for enrol:K): the mean over seeds per mode,
               and Score = the mean over modes
  small set    adarl with one global SVM only (weights 1)

and the mean of the corpora's Scores. Validation speakers unless --test.

  python examples/late_fusion_weights.py emodb=runs/s2d/e0,runs/s2d/e1,runs/s2d/e2 \\
      ravdess-dev=runs/s2d/r0,runs/s2d/r1,runs/s2d/r2 [--test]
"""

import argparse
from pathlib import Path

import numpy as np

from late_fusion_statistics import MODES, member_probabilities

from adarl_jax import metrics
from adarl_jax.report.late_fusion import FUNCTIONALS, MEMBERS
from adarl_jax.workdir.layout import collect

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)
LOSO_WEIGHTS = (0.5, 1.0, 2.0)


def fused(cnn, others, w):
    return (w * cnn + sum(others)) / (w + len(others))


def loso_scores(workdirs, split: str) -> dict:
    """{w: (per-seed mean fold UA, per-seed pooled UA)} of the per-speaker fusion."""
    out = {w: ([], []) for w in LOSO_WEIGHTS}
    for W in workdirs:
        c = collect(W)
        K = len(c[MEMBERS[0]][0]["classes"])
        folds = sorted(r["fold"] for r in c[MEMBERS[0]])
        per_fold = []  # (labels, [probabilities of each member]) per fold, read once
        for f in folds:
            by = [{u["utterance"]: u for u in next(r for r in c[m] if r["fold"] == f)[split]}
                  for m in MEMBERS]
            utts = sorted(by[0])
            per_fold.append((np.array([by[0][u]["emotion"] for u in utts]),
                             [np.array([b[u]["probs"] for u in utts]) for b in by]))
        for w in LOSO_WEIGHTS:
            uas, ys, ps = [], [], []
            for y, p in per_fold:
                pred = fused(p[0], p[1:], w).argmax(1)
                uas.append(metrics.unweighted_accuracy(y, pred, K))
                ys.append(y)
                ps.append(pred)
            out[w][0].append(np.mean(uas))
            out[w][1].append(metrics.unweighted_accuracy(np.concatenate(ys), np.concatenate(ps), K))
    return out


def small_scores(workdirs, test: bool, modes) -> dict:
    """{system: {mode: per-seed UA pooled over folds (mean over draws)}} under `modes`."""
    systems = {**{f"w={w:g}": (w, FUNCTIONALS) for w in WEIGHTS},
               **{f"adarl + {fs}": (1.0, (fs,)) for fs in FUNCTIONALS}}
    out = {s: {m: [] for m in modes} for s in systems}
    for W in workdirs:
        rows = list(member_probabilities(Path(W), test, modes))
        K = rows[0]["cnn"].shape[1]
        for mode in modes:
            draws = sorted({r["draw"] for r in rows if r["mode"] == mode})
            by_draw = [[r for r in rows if r["mode"] == mode and r["draw"] == d] for d in draws]
            labels = [np.concatenate([r["y"][r["keep"]] for r in rs]) for rs in by_draw]
            for name, (w, sets) in systems.items():
                uas = [metrics.unweighted_accuracy(y, np.concatenate([
                    fused(r["cnn"], [r[f"{fs}_global"] for fs in sets], w).argmax(1)[r["keep"]]
                    for r in rs]), K) for rs, y in zip(by_draw, labels)]
                out[name][mode].append(np.mean(uas))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpora", nargs="+", help="name=workdir,workdir,... (one per seed)")
    ap.add_argument("--test", action="store_true", help="the test speakers (default: validation)")
    ap.add_argument("--modes", default=",".join(MODES), help="the small-group statistics")
    args = ap.parse_args()
    modes = tuple(m for m in args.modes.split(",") if m)
    split = "utterances" if args.test else "val_utterances"
    means = {}
    for spec in args.corpora:
        name, _, dirs = spec.partition("=")
        workdirs = [d for d in dirs.split(",") if d]
        if not workdirs:
            raise SystemExit(f"{spec!r}: expected name=workdir,workdir,...")
        print(f"== {name} ({'test' if args.test else 'validation'} speakers, {len(workdirs)} seeds)")
        for w, (fold_mean, pooled) in loso_scores(workdirs, split).items():
            means.setdefault(f"loso w={w:g}", []).append(np.mean(fold_mean))
            print(f"  loso  w={w:<4g} mean fold UA {np.mean(fold_mean):.4f}; pooled "
                  f"{np.mean(pooled):.4f} ± {np.std(pooled, ddof=1) if len(pooled) > 1 else 0:.3f}")
        for system, per_mode in small_scores(workdirs, args.test, modes).items():
            score = np.mean([np.mean(v) for v in per_mode.values()])
            means.setdefault(f"small {system}", []).append(score)
            cells = "  ".join(f"{m} {np.mean(v):.3f}" for m, v in per_mode.items())
            print(f"  small {system:16s} Score {score:.4f}   {cells}")
    print("mean of the corpora:")
    for system, scores in means.items():
        print(f"  {system:22s} {np.mean(scores):.4f}")


if __name__ == "__main__":
    main()
