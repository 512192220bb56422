"""A recording without its speaker's statistics, standardised with the nearest training
speaker's instead of the training speakers' pooled ones (`predict`'s default): adarl alone and
with the two globally standardised SVMs (`fusion_global`, what a fused model folder scores a
lone recording with), per seed workdir, on the validation speakers (or --test). RESULTS.md,
"The late fusion's weights, and a lone recording's statistics" (not adopted).

The nearest speaker: of the fold's training speakers (its validation speakers excluded), the
one whose mean (per band and channel, over all its frames) is nearest (Euclidean) to the
recording's own frame mean. The recording's statistics only pick a speaker.

  python examples/nearest_speaker_statistics.py runs/s2d/e0 runs/s2d/e1 runs/s2d/e2 [--test]
"""

import argparse
from pathlib import Path

import numpy as np

from late_fusion_statistics import fold_models

from adarl_jax import metrics
from adarl_jax.data.dataset import normalization_groups, normalize_segments, raw_segments, speaker_statistics
from adarl_jax.train.test_statistics import training_statistics

MODES = ("train", "nearest")


def nearest_speakers(own: dict, candidates: list, norm_stats: dict) -> dict:
    """{recording: the candidate speaker whose mean is nearest its own}."""
    means = np.stack([norm_stats[s][0].ravel() for s in candidates])
    return {u: candidates[int(np.argmin(np.square(means - m.ravel()).sum(1)))]
            for u, (m, _) in own.items()}


def fold_predictions(W: Path, test: bool):
    """Per adarl fold: (labels, {mode: adarl's probabilities}, {set: global SVM's}, share of
    recordings whose nearest speaker has their gender)."""
    for m in fold_models(W, test):
        dataset, scored = m.dataset, m.scored
        gender = {u.speaker: u.gender for u in dataset.utterances}
        segs = dataset.subset_segments(scored)
        raw = raw_segments(dataset, segs, normalization_groups(dataset, "speaker"))
        frames, seg_utt = dataset.segment_frames[segs], dataset.segment_utt[segs]
        own = speaker_statistics(raw, frames, seg_utt, float(m.config.frontend.zscore_eps))
        candidates = list(dict.fromkeys(m.speakers[np.asarray(m.fold.train, np.int64)].tolist()))
        pick = nearest_speakers(own, candidates, dataset.norm_stats)
        pooled = training_statistics(dataset, m.fold.train)
        cnn = {}
        for mode in MODES:
            if mode == "train":
                groups = np.array(["train"] * len(segs), object)
                stats = {"train": (pooled["mean"], pooled["std"])}
            else:
                groups = np.array([pick[u] for u in seg_utt], object)
                stats = {s: dataset.norm_stats[s] for s in set(pick.values())}
            p = np.asarray(m.evaluate(m.variables, normalize_segments(raw, frames, groups, stats),
                                      None)["emotion_probs"])
            cnn[mode] = np.stack([p[seg_utt == u].mean(0) for u in scored])
        glob = {fs: svm.probs(m.raw[fs][scored], m.K) for fs, svm in m.global_svms.items()}
        same = np.mean([gender[pick[int(u)]] == gender[m.speakers[u]] for u in scored])
        yield np.asarray(dataset.emotion)[scored], cnn, glob, same


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdirs", nargs="+", help="finished reproduce workdirs (adarl + baselines), one a seed")
    ap.add_argument("--test", action="store_true", help="the test speakers (default: validation)")
    args = ap.parse_args()
    scores, same = {}, []
    for W in args.workdirs:
        folds = list(fold_predictions(Path(W), args.test))
        y = np.concatenate([f[0] for f in folds])
        K = folds[0][1]["train"].shape[1]
        for mode in MODES:
            cnn = np.concatenate([f[1][mode] for f in folds])
            glob = np.concatenate([sum(f[2].values()) for f in folds])
            for system, p in (("adarl", cnn), ("fusion_global", cnn + glob)):
                scores.setdefault((system, mode), []).append(
                    metrics.unweighted_accuracy(y, p.argmax(1), K))
        same += [f[3] for f in folds]
    print(f"{' '.join(args.workdirs)} ({'test' if args.test else 'validation'} speakers): UA pooled "
          "over folds, mean over workdirs (each)")
    for (system, mode), uas in scores.items():
        print(f"  {system:14s} {mode:8s} {np.mean(uas):.4f}  ({' '.join(f'{u:.3f}' for u in uas)})")
    print(f"  the nearest speaker has the recording's gender: {np.mean(same):.2f} (mean over folds)")


if __name__ == "__main__":
    main()
