"""The classic pipeline as a baseline: openSMILE functionals + a linear SVM, on the same LOSO
folds as the neural variants, written where `adarl_jax.report.report` finds them.

  W/cache/opensmile_<set>_<key16>.npy   (n_files, n_features) float32, one row per usable file
  W/cache/opensmile_<set>_<key16>.json  which row is which file, skipped files, feature names
  W/opensmile_<set>_svm/fold_<kk>_<speaker>/result.json   the trainer's result format
  W/opensmile_<set>_svm/fold_<kk>_<speaker>/model.npz     scaler and SVM weights (no pickle)

Per utterance: the whole file, mono 16 kHz (`audio.load_audio`, the same reader and the same
minimum length as the spectrogram cache, so the same files are usable and the folds are the
neural runs' folds), then `opensmile.Smile(feature_set, Functionals).process_signal`; one
vector per utterance, so `segments` is 1 and `probs` is not a mean over segments.

Per fold (`adarl_jax.baselines.linear_svm`): standardisation + `SVC(kernel='linear',
class_weight='balanced')`, its cost C chosen without the test speaker (`c_select`): 'val' (the
fold's validation speakers, when config.train.selection == 'val'), 'inner' (leave-one-speaker-
out over the training speakers; the default when the folds have no validation speakers) or
'fixed'. The final model is fitted on exactly the speakers the neural variants train on, the
fold's training speakers; `config.baselines.refit_on_val = True` refits on training +
validation speakers instead (the neural variants have no such option yet, so only the default
is like-for-like). The rule is recorded in each result (`baseline.refit_on_val`,
`baseline.fit_speakers`); a finished fold fitted under another rule is refitted. The test
speaker is touched once, at the end. `probs` is the softmax of the SVM's per-class scores
(pairwise votes plus a confidence in (-1/3, 1/3), sklearn's 'ovr' shape): argmax-consistent,
not calibrated probabilities.

No deep feature is written (so Table 4 and the t-SNE skip the baselines).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from adarl_jax import metrics
from adarl_jax.baselines.linear_svm import C_GRID, C_SELECT, DEFAULT_C, LinearModel, fit_fold, fit_svm
from adarl_jax.data.corpora import Utterance
from adarl_jax.data.dataset import domain_labels
from adarl_jax.data.folds import config_folds, every_speaker_fold
from adarl_jax.data.functionals import (FEATURE_SETS, Extractor, FeatureTable, check_feature_set,
                                        extract_features, moments, opensmile_extractor,
                                        opensmile_module, speaker_zscore)
from adarl_jax.data.reading import read_utterances
from adarl_jax.experiments.loso import fold_scores, run_folds
from adarl_jax.extras import MissingExtraError, require
from adarl_jax.train.test_statistics import enrolment_draws, parse_mode, speaker_utterances
from adarl_jax.workdir.fold_record import fold_record, refitted_on_val

__all__ = [
    "FEATURE_SETS", "C_GRID", "DEFAULT_C", "FeatureTable", "variant_name", "opensmile_available",
    "opensmile_extractor", "corpus_utterances", "speaker_zscore", "normalizations", "extract_features", "LinearModel", "fit_svm", "fit_fold",
    "run_opensmile_svm", "run_baselines", "fit_final_svm",
]

log = logging.getLogger(__name__)

NORMALIZATIONS = ("global", "speaker")  # config.baselines.normalize


def variant_name(feature_set: str, normalize: str = "global") -> str:
    """opensmile_<set>_svm (global standardisation) or opensmile_<set>_spk_svm (per speaker)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"baselines.normalize {normalize!r}: expected one of "
                         f"{', '.join(NORMALIZATIONS)}")
    return f"opensmile_{check_feature_set(feature_set)}{'_spk' if normalize == 'speaker' else ''}_svm"


def normalizations(config) -> tuple[str, ...]:
    """config.baselines.normalize (('global',) when a saved config predates the field)."""
    section = config.get("baselines")
    chosen = tuple(section.get("normalize", ("global",))) if section is not None else ("global",)
    for n in chosen:
        variant_name("egemaps", n)  # names a bad value
    return chosen



def opensmile_available() -> bool:
    """Whether the `[baselines]` extra is installed: opensmile and scikit-learn."""
    try:
        opensmile_module()
        require("sklearn.svm", "baselines", "the SVM baselines")
    except MissingExtraError:
        return False
    return True


def corpus_utterances(config) -> list[Utterance]:
    """The utterances the neural runs read (`reading.read_utterances`), the domain column
    optional (the SVM does not use it). Files that cannot be read are dropped later, by
    `extract_features`, with the spectrogram cache's rule."""
    return read_utterances(config, need_domain=False)


def _resolve_c_select(config, c_select: str) -> str:
    if c_select not in C_SELECT:
        raise ValueError(f"c_select={c_select!r}: expected one of {', '.join(C_SELECT)}")
    if c_select == "auto":
        return "val" if config.train.selection == "val" else "inner"
    return c_select


def refit_on_val(config) -> bool:
    """config.baselines.refit_on_val (False when a saved config predates the field)."""
    section = config.get("baselines")
    return bool(section.get("refit_on_val", False)) if section is not None else False


def _outdated(result: dict, c_select: str, refit: bool, normalize: str = "global") -> str | None:
    """Why a finished fold's model must be fitted again: fitted with another C selection, or
    on other speakers than this refit rule names (None: it stands)."""
    has_val = bool(result.get("val_speakers"))
    fitted_c = result.get("baseline", {}).get("c_select")
    fitted_norm = result.get("baseline", {}).get("normalize", "global")
    if (fitted_c == c_select and refitted_on_val(result) == (refit and has_val)
            and fitted_norm == normalize):
        return None
    return (f"fitted with c_select={fitted_c}, on validation speakers: "
            f"{refitted_on_val(result)}; refitting with c_select={c_select}, "
            f"baselines.refit_on_val={refit}")


def run_opensmile_svm(config, workdir, feature_set: str, folds: str | None = None,
                      utterances: list[Utterance] | None = None, c_select: str = "auto",
                      C: float | None = None, extractor: Extractor | None = None,
                      extractor_id: str | None = None, progress: bool = True,
                      write: bool = True, blas_threads: int | None = 1,
                      normalize: str = "global") -> list[dict]:
    """openSMILE `feature_set` ('egemaps' | 'compare') functionals + linear SVM over the LOSO
    folds of the neural runs; writes and returns one result record per fold.

    `utterances`: the list the neural runs' folds are made of (`reading.load_dataset(...).utterances`);
    default: the config's corpus read as `reading.load_dataset` reads it. `folds`: a `--folds`
    string. A fold whose result.json exists is loaded, not refitted, unless it was fitted
    under another C selection or refit rule (`config.baselines.refit_on_val`). `write=False` on all but
    one process of a multi-process run. `blas_threads`: BLAS threads while fitting (the
    matrices are small; on a busy CPU more threads are much slower); None leaves them be.
    `normalize`: 'global' or 'speaker' (`speaker_zscore` before the scaler; the test speaker
    is then also scored under each enrol:K of config.eval.test_statistics, its statistics
    from K of its utterances, as adarl_jax.train.test_statistics does for the CNN).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads):
        return _fit_folds(config, workdir, feature_set, folds=folds, utterances=utterances,
                          c_select=c_select, C=C, extractor=extractor,
                          extractor_id=extractor_id, progress=progress, write=write,
                          normalize=normalize)


def _fit_folds(config, workdir, feature_set, *, folds, utterances, c_select, C, extractor,
               extractor_id, progress, write, normalize) -> list[dict]:
    variant = variant_name(feature_set, normalize)
    c_select = _resolve_c_select(config, c_select)
    refit = refit_on_val(config)
    if c_select == "fixed" and C is None:
        C = DEFAULT_C
    workdir = Path(workdir)
    if utterances is None:
        utterances = corpus_utterances(config)
    table = extract_features(config, utterances, workdir / "cache", feature_set, extractor,
                             extractor_id, progress)
    chosen = config_folds(config, table.utterances, folds)
    raw = table.features
    if normalize == "speaker":
        table.features = speaker_zscore(raw, np.array([u.speaker for u in table.utterances], object))

    def fit(fold, out_dir: Path) -> dict:
        model, result = _fit_fold(config, table, fold, variant, feature_set, c_select, C, refit)
        result["baseline"]["normalize"] = normalize
        if normalize == "speaker":
            result.update(_enrolled(config, raw, table.utterances, fold, model))
        if write:  # the model first: result.json (written by run_folds) marks the fold finished
            out_dir.mkdir(parents=True, exist_ok=True)
            model.save(out_dir / "model.npz")
        return result

    return run_folds(workdir, variant, chosen, fit,
                     outdated=lambda done: _outdated(done, c_select, refit, normalize),
                     describe=_describe, progress=progress, write=write)


def _describe(result: dict) -> str:
    return fold_scores(result) + f" C {result['baseline']['C']:g} ({result['train_time_s']:.1f} s)"


def _emotion_labels(config, utterances) -> np.ndarray:
    """Each utterance's class index in config.data.classes (-1: no emotion of them)."""
    classes = tuple(config.data.classes)
    return np.array([classes.index(u.emotion) if u.emotion is not None else -1
                     for u in utterances], np.int64)


def _fit_fold(config, table: FeatureTable, fold, variant, feature_set, c_select, C, refit):
    """(fitted model, result record) of one fold: the SVM fitted as `fit_fold` says, then
    scored once on the test speaker."""
    utts, classes = table.utterances, tuple(config.data.classes)
    num_classes = len(classes)
    emotion = _emotion_labels(config, utts)
    domain = domain_labels(config, utts).astype(np.int64)
    speakers = np.array([u.speaker for u in utts], dtype=object)
    t0 = time.time()
    model, info = fit_fold(table.features, emotion, speakers, fold, num_classes, c_select, C,
                           seed=int(config.train.seed), refit_on_val=refit)

    def scored_rows(indices) -> list[dict]:
        """One row per utterance, as the CNN's result records hold them (probs of the model)."""
        indices = np.asarray(indices, np.int64)
        probs = model.probs(table.features[indices], num_classes) if len(indices) else []
        return [{"utterance": int(i), "path": utts[i].path, "speaker": utts[i].speaker,
                 "emotion": int(emotion[i]), "gender": int(domain[i]), "segments": 1,
                 "probs": p.round(6).tolist()} for i, p in zip(indices, probs)]

    rows = scored_rows(fold.test)
    y = np.array([r["emotion"] for r in rows], np.int64)
    pred = np.array([int(np.argmax(r["probs"])) for r in rows], np.int64)
    return model, fold_record(
        config, fold, variant, selection=f"C by {c_select}", selected_epoch=None,
        best_val_ua=None if not info["c_scores"] else info["c_scores"][f"{info['C']:g}"],
        epochs=None, steps=None, train_time_s=round(time.time() - t0, 2),
        baseline={"feature_set": feature_set, "extractor": table.extractor_id,
                  "n_features": int(table.features.shape[1]), "classifier":
                  "StandardScaler + SVC(kernel='linear', class_weight='balanced')", **info},
        test={"n": int(len(y)), "wa": metrics.weighted_accuracy(y, pred),
              "ua": metrics.unweighted_accuracy(y, pred, num_classes)},
        utterances=rows,  # the validation speakers' rows, when the SVM was not fitted on them
        val_utterances=[] if info["refit_on_val"] else scored_rows(fold.val))


def _enrolled(config, raw: np.ndarray, utterances, fold, model) -> dict:
    """{'test_statistics': {'enrol:K': [[class or -1 per test utterance] per draw]}}: the test
    speaker's functionals z-scored with the statistics of K of its utterances (drawn by
    test_statistics.enrolment_draws, as for the CNN; those K are not scored)."""
    section = config.get("eval")
    modes = [m for m in (section.get("test_statistics", ()) if section is not None else ())
             if parse_mode(m)[0] == "enrol"]
    test = np.asarray(fold.test, np.int64)
    by_speaker = speaker_utterances(utterances, test)
    if not modes or not by_speaker:
        return {}
    num_classes, out = len(config.data.classes), {}
    for mode in modes:
        k = parse_mode(mode)[1]
        runs = []
        for chosen in enrolment_draws(by_speaker, k, int(section.get("enrol_draws", 5)),
                                      int(config.train.seed), fold.index):
            pred = {}
            for spk, rows in by_speaker.items():
                enrolled = set(chosen[spk].tolist())
                ref = raw[sorted(enrolled)].astype(np.float64)
                x = ((raw[rows] - ref.mean(0)) / (ref.std(0) + 1e-8)).astype(np.float32)
                scored = np.argmax(model.probs(x, num_classes), axis=1)
                pred.update({int(i): -1 if int(i) in enrolled else int(p) for i, p in zip(rows, scored)})
            runs.append([pred.get(int(i), -1) for i in test])
        out[mode] = runs
    return {"test_statistics": out}


def fit_final_svm(config, utterances: list[Utterance], cache_dir, feature_set: str,
                  extractor: Extractor | None = None, extractor_id: str | None = None,
                  progress: bool = True, normalize: str = "speaker") -> tuple[LinearModel, dict, tuple]:
    """An SVM of a final model (a late fusion's member): every speaker's functionals z-scored
    with that speaker's statistics (`normalize` 'speaker'), or raw, the SVM's own scaler
    standardising them over all speakers ('global'); C by leave-one-speaker-out over all the
    speakers, then fitted on all. Returns (model, info, (mean, std)): the pooled moments of the
    raw functionals, what standardises a recording for the per-speaker SVM under
    `predict --speaker-from training`."""
    from threadpoolctl import threadpool_limits

    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize={normalize!r}: expected one of {', '.join(NORMALIZATIONS)}")
    table = extract_features(config, utterances, cache_dir, feature_set, extractor,
                             extractor_id, progress)
    emotion = _emotion_labels(config, table.utterances)
    speakers = np.array([u.speaker for u in table.utterances], dtype=object)
    x = speaker_zscore(table.features, speakers) if normalize == "speaker" else table.features
    with threadpool_limits(limits=1):
        model, info = fit_fold(x, emotion, speakers, every_speaker_fold(table.utterances),
                               len(config.data.classes), "inner", seed=int(config.train.seed))
    return model, {"feature_set": feature_set, "extractor": table.extractor_id,
                   "normalize": normalize, **info}, moments(table.features)


def run_baselines(config, workdir, feature_sets=("egemaps", "compare"), folds: str | None = None,
                  utterances: list[Utterance] | None = None, progress: bool = True,
                  write: bool = True) -> dict[str, list[dict]]:
    """Both openSMILE baselines; {variant: results}. Skips them, with a warning, when the
    `opensmile` package is not installed (the optional `[baselines]` extra)."""
    if not opensmile_available():
        log.warning("openSMILE baselines skipped: pip install 'adarl-jax[baselines]' to add them")
        if progress:
            print("openSMILE baselines skipped: the `opensmile` or `scikit-learn` package is not "
                  "installed (pip install 'adarl-jax[baselines]')", flush=True)
        return {}
    if utterances is None:
        utterances = corpus_utterances(config)
    return {variant_name(fs, norm): run_opensmile_svm(config, workdir, fs, folds, utterances,
                                                      progress=progress, write=write,
                                                      normalize=norm)
            for norm in normalizations(config) for fs in feature_sets}
