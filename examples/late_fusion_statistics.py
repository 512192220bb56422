"""The late fusion under the statistics a user has: each adarl fold model of a finished main
command's workdir (adarl and the per-speaker baselines) labels its validation speakers (or,
with --test, its test speaker) under `train` (the training speakers' pooled statistics),
`utterance` (each recording alone), `enrol:3` and `enrol:10` (K of the speaker's recordings,
not scored, 5 draws), and with the speaker's own statistics (`all`). The SVM fold models'
functionals are standardised as `predict` does for a fused model: with the pooled moments of
the fold's training recordings under `train` and `utterance` (one recording has none), with
the moments of the same K recordings under `enrol:K`, with the speaker's own under `all`;
`fusion_global` takes the fold's globally standardised SVMs instead (what a fused model folder
does for a speaker group of fewer than `GLOBAL_BELOW` recordings and under `train`), and
`compare_global`, `egemaps_global` are those SVMs alone. Prints UA pooled over folds (mean ±
sd over draws) of each (RESULTS.md, "The late fusion under the statistics a user has", "The
late fusion's SVMs for small speaker groups").

  python examples/late_fusion_statistics.py runs/late/e0 [--test] [--modes train,enrol:20]
"""

import argparse
import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from adarl_jax import metrics
from adarl_jax.baselines.linear_svm import LinearModel
from adarl_jax.baselines.opensmile import variant_name
from adarl_jax.data.folds import config_folds
from adarl_jax.data.functionals import attach_functionals, extract_features, moments, speaker_zscore
from adarl_jax.data.reading import load_dataset
from adarl_jax.inference.fold_models import find_fold, restore_variables
from adarl_jax.model import build_model
from adarl_jax.report.late_fusion import FUNCTIONALS
from adarl_jax.train import sharding
from adarl_jax.train.forward import BatchedInference
from adarl_jax.train.test_statistics import enrolment_draws, predictions_under_modes, speaker_utterances
from adarl_jax.workdir.layout import fold_dirs

MODES, DRAWS = ("train", "utterance", "enrol:3", "enrol:10"), 5
SYSTEMS = ("adarl", "fusion", "fusion_global", *(f"{fs}_global" for fs in FUNCTIONALS))


def fold_models(W: Path, test: bool):
    """Per adarl fold model of workdir `W`, a namespace: ref, config, variables, dataset (read
    once, speaker-standardised), fold, scored (its validation utterances, or with `test` its
    test utterances), evaluate (a BatchedInference of the model), K, speakers (per utterance),
    raw ({set: the raw openSMILE functionals of every utterance}), svms and global_svms ({set:
    the fold's per-speaker and global LinearModel})."""
    mesh, shared = sharding.make_mesh(), None
    for ref in find_fold(W, "adarl", "all"):
        config, variables = restore_variables(ref)
        if shared is None:
            dataset = load_dataset(config, W, progress=False)
            shared = dict(
                dataset=dataset, K=len(config.data.classes),
                speakers=np.array([u.speaker for u in dataset.utterances], object),
                raw={fs: extract_features(config, dataset.utterances, W / "cache", fs,
                                          progress=False).features.astype(np.float64)
                     for fs in FUNCTIONALS})
        dataset = shared["dataset"]
        fold = config_folds(config, dataset.utterances, str(ref.fold))[0]
        attach_functionals(config, dataset, progress=False)
        svms, global_svms = ({fs: LinearModel.load(fold_dirs(W / variant_name(fs, norm))[ref.fold] / "model.npz")
                              for fs in FUNCTIONALS} for norm in ("speaker", "global"))
        yield SimpleNamespace(
            ref=ref, config=config, variables=variables, fold=fold,
            scored=np.asarray(fold.test if test else fold.val, np.int64),
            evaluate=BatchedInference(build_model(config), mesh, int(config.train.eval_batch_size)),
            svms=svms, global_svms=global_svms, **shared)


def member_probabilities(W: Path, test: bool, modes=MODES):
    """Per adarl fold of workdir `W`, statistics mode and draw: {mode, draw, fold, y, keep (the
    scored utterances: under enrol:K those not among the K), cnn (adarl's probabilities),
    spk_svm (the mean of the per-speaker SVMs', standardised as above), <set>_global (each
    globally standardised SVM's)}, each array over the fold's validation (or, `test`, test)
    utterances."""
    for m in fold_models(W, test):
        ref, config, variables, dataset, fold = m.ref, m.config, m.variables, m.dataset, m.fold
        scored_utts, evaluate, K, speakers, raw = m.scored, m.evaluate, m.K, m.speakers, m.raw
        svms, global_svms = m.svms, m.global_svms
        captured = []  # segment probabilities, one array per mode and draw, in call order

        def probs(x, u):
            captured.append(np.asarray(evaluate(variables, x, u)["emotion_probs"]))
            return captured[-1]

        scored = config.copy_and_resolve_references()
        scored.eval.test_statistics, scored.eval.enrol_draws = modes, DRAWS
        seed = int(config.train.seed)
        predictions_under_modes(scored, dataset, dataclasses.replace(fold, test=scored_utts), probs, seed)
        seg_utt = dataset.segment_utt[dataset.subset_segments(scored_utts)]
        y = np.asarray(dataset.emotion)[scored_utts]
        pooled = {fs: moments(raw[fs][np.asarray(fold.train, np.int64)]) for fs in FUNCTIONALS}
        record = json.loads((fold_dirs(W / "adarl")[ref.fold] / "result.json").read_text())
        own = {r["utterance"]: r["probs"]
               for r in record["utterances" if test else "val_utterances"]}
        runs = [("all", 0, None, None)]
        calls = iter(captured)
        for mode in modes:
            if mode.startswith("enrol"):
                by = speaker_utterances(dataset.utterances, scored_utts)
                for d, chosen in enumerate(enrolment_draws(by, int(mode.split(":")[1]), DRAWS, seed, fold.index)):
                    runs.append((mode, d, next(calls), chosen))
            else:
                runs.append((mode, 0, next(calls), None))
        for mode, d, seg_probs, chosen in runs:
            cnn = (np.stack([own[int(u)] for u in scored_utts]) if seg_probs is None else
                   np.stack([seg_probs[seg_utt == u].mean(0) for u in scored_utts]))
            keep = np.ones(len(scored_utts), bool)
            svm = np.zeros_like(cnn)
            for fs, model in svms.items():
                if mode == "all":
                    z = speaker_zscore(raw[fs], speakers)[scored_utts]
                elif chosen is None:
                    z = (raw[fs][scored_utts] - pooled[fs][0]) / pooled[fs][1]
                else:
                    z = np.zeros((len(scored_utts), raw[fs].shape[1]))
                    for spk, utts in chosen.items():
                        rows = speakers[scored_utts] == spk
                        mean, std = moments(raw[fs][np.asarray(utts)])
                        z[rows] = (raw[fs][scored_utts[rows]] - mean) / std
                        keep &= ~np.isin(scored_utts, utts)
                svm += model.probs(z, K) / len(svms)
            yield dict(mode=mode, draw=d, fold=int(ref.fold), y=y, keep=keep, cnn=cnn, spk_svm=svm,
                       **{f"{fs}_global": m.probs(raw[fs][scored_utts], K)
                          for fs, m in global_svms.items()})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir")
    ap.add_argument("--test", action="store_true", help="the test speakers (default: validation)")
    ap.add_argument("--modes", default=",".join(MODES),
                    help=f"the statistics besides `all`, comma-separated (default: {','.join(MODES)})")
    args = ap.parse_args()
    modes = tuple(m for m in args.modes.split(",") if m)
    W = Path(args.workdir)
    scores, K = {}, None
    for r in member_probabilities(W, args.test, modes):
        K = r["cnn"].shape[1]
        cnn, svm, keep = r["cnn"], r["spk_svm"], r["keep"]
        glob = {fs: r[f"{fs}_global"] for fs in FUNCTIONALS}
        predicted = {"adarl": cnn, "fusion": (cnn + len(FUNCTIONALS) * svm) / (1 + len(FUNCTIONALS)),
                     "fusion_global": (cnn + sum(glob.values())) / (1 + len(glob)),
                     **{f"{fs}_global": p for fs, p in glob.items()}}
        entry = scores.setdefault((r["mode"], r["draw"]), {"y": []})
        entry["y"].append(r["y"][keep])
        for system, p in predicted.items():
            entry.setdefault(system, []).append(p.argmax(1)[keep])
    print(f"{W} ({'test' if args.test else 'validation'} speakers): UA pooled over folds")
    for mode in ("all", *modes):
        cells = []
        for system in SYSTEMS:
            uas = [metrics.unweighted_accuracy(np.concatenate(e["y"]), np.concatenate(e[system]), K)
                   for (m, _), e in scores.items() if m == mode]
            cells.append(f"{system} {np.mean(uas):.3f}" + (f" ± {np.std(uas, ddof=1):.3f}" if len(uas) > 1 else ""))
        print(f"  {mode:10s} " + "   ".join(cells))


if __name__ == "__main__":
    main()
