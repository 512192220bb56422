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
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from adarl_jax import metrics
from adarl_jax.baselines.linear_svm import C_GRID, C_SELECT, DEFAULT_C, LinearModel, fit_fold, fit_svm
from adarl_jax.data.audio import AudioError, load_audio
from adarl_jax.data.corpora import Utterance
from adarl_jax.data.dataset import domain_labels
from adarl_jax.data.feature_cache import min_samples_for, stamps_key
from adarl_jax.data.folds import config_folds
from adarl_jax.data.reading import read_utterances
from adarl_jax.experiments.loso import fold_scores, run_folds
from adarl_jax.extras import MissingExtraError, require
from adarl_jax.train.test_statistics import parse_mode
from adarl_jax.workdir.files import read_json, save_npy_atomic, write_json_atomic
from adarl_jax.workdir.fold_record import fold_record, refitted_on_val

__all__ = [
    "FEATURE_SETS", "C_GRID", "DEFAULT_C", "FeatureTable", "variant_name", "opensmile_available",
    "opensmile_extractor", "corpus_utterances", "speaker_zscore", "normalizations", "extract_features", "LinearModel", "fit_svm", "fit_fold",
    "run_opensmile_svm", "run_baselines",
]

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the layout or the meaning of cached features changes
# short name -> openSMILE FeatureSet member
FEATURE_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}

# (wave float32 (n,), sample_rate) -> feature vector (d,)
Extractor = Callable[[np.ndarray, int], np.ndarray]


NORMALIZATIONS = ("global", "speaker")  # config.baselines.normalize


def variant_name(feature_set: str, normalize: str = "global") -> str:
    """opensmile_<set>_svm (global standardisation) or opensmile_<set>_spk_svm (per speaker)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"baselines.normalize {normalize!r}: expected one of "
                         f"{', '.join(NORMALIZATIONS)}")
    return f"opensmile_{_check_set(feature_set)}{'_spk' if normalize == 'speaker' else ''}_svm"


def normalizations(config) -> tuple[str, ...]:
    """config.baselines.normalize (('global',) when a saved config predates the field)."""
    section = config.get("baselines")
    chosen = tuple(section.get("normalize", ("global",))) if section is not None else ("global",)
    for n in chosen:
        variant_name("egemaps", n)  # names a bad value
    return chosen


def speaker_zscore(features: np.ndarray, speakers: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Each speaker's rows standardised with that speaker's own mean and std (ddof 0):
    the functionals' counterpart of frontend.normalize='speaker' (unlabelled rows count)."""
    out = np.empty_like(features, dtype=np.float64)
    for s in dict.fromkeys(speakers.tolist()):
        rows = speakers == s
        x = features[rows].astype(np.float64)
        out[rows] = (x - x.mean(0)) / (x.std(0) + eps)
    return out.astype(np.float32)


def _check_set(feature_set: str) -> str:
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"feature set {feature_set!r}: expected one of {', '.join(FEATURE_SETS)}")
    return feature_set


def opensmile_available() -> bool:
    """Whether the `[baselines]` extra is installed: opensmile and scikit-learn."""
    try:
        opensmile_module()
        require("sklearn.svm", "baselines", "the SVM baselines")
    except MissingExtraError:
        return False
    return True


def opensmile_module():
    return require("opensmile", "baselines", "the openSMILE baseline")


def opensmile_extractor(feature_set: str) -> tuple[Extractor, str, list[str]]:
    """(extract, identity for the cache key, feature names) for an openSMILE functionals set."""
    opensmile = opensmile_module()
    name = FEATURE_SETS[_check_set(feature_set)]
    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, name),
                            feature_level=opensmile.FeatureLevel.Functionals)

    def extract(wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return smile.process_signal(wave, sample_rate).to_numpy(dtype=np.float32)[0]

    return extract, f"opensmile {opensmile.__version__} {name} Functionals", list(smile.feature_names)


def corpus_utterances(config) -> list[Utterance]:
    """The utterances the neural runs read (`reading.read_utterances`), the domain column
    optional (the SVM does not use it). Files that cannot be read are dropped later, by
    `extract_features`, with the spectrogram cache's rule."""
    return read_utterances(config, need_domain=False)


# ---------------------------------------------------------------------------------------------
# Features, cached


@dataclass
class FeatureTable:
    features: np.ndarray  # (n_utt, d) float32, row i = utterances[i]
    utterances: list[Utterance]  # the usable ones, in the caller's order
    skipped: list[tuple[str, str]]  # (path, reason)
    feature_names: list[str] = field(default_factory=list)
    extractor_id: str = ""
    cache_path: str = ""
    from_cache: bool = False
    extract_time_s: float = 0.0


def _key_material(config, feature_set: str, extractor_id: str) -> dict:
    return {"format": CACHE_FORMAT, "feature_set": feature_set, "extractor": extractor_id,
            "sample_rate": int(config.data.sample_rate), "min_samples": int(min_samples_for(config))}


def feature_cache_key(config, feature_set: str, extractor_id: str, paths) -> str:
    """sha256 over the feature set, the extractor (package version), the reading rule and each
    file's (path, size, mtime), as the spectrogram cache's key. Labels are not part of it."""
    return stamps_key(_key_material(config, feature_set, extractor_id), paths)


def _load_cache(npy: Path, index: Path, key: str):
    if not (npy.is_file() and index.is_file()):
        return None
    try:
        meta = read_json(index)
        x = np.load(npy, allow_pickle=False)
    except (OSError, ValueError) as e:
        log.warning("openSMILE feature cache %s is unreadable (%s); recomputing", npy, e)
        return None
    if meta.get("key") != key or x.ndim != 2 or x.shape[0] != len(meta.get("files", [])):
        log.warning("openSMILE feature cache %s does not match its index; recomputing", npy)
        return None
    return x, meta


def _extract_rows(config, paths, feature_set, extractor, extractor_id, names, progress, npy) -> dict:
    """Reads and extracts every file of `paths`, writes the matrix to `npy`; returns the index
    (without its key)."""
    sr, min_samples = int(config.data.sample_rate), int(min_samples_for(config))
    rows, files, skipped = [], [], []
    t0 = time.time()
    for path in tqdm(paths, desc=f"openSMILE {FEATURE_SETS[feature_set]}", unit="file",
                     disable=not progress):
        try:
            wave = load_audio(path, sr, min_samples=min_samples)
        except AudioError as e:
            log.warning("skipping %s: %s", path, e.reason)
            skipped.append([path, e.reason])
            continue
        try:
            v = np.asarray(extractor(wave, sr), np.float32).reshape(-1)
        except Exception as e:  # the extractor failing on one file must not lose the rest
            log.warning("skipping %s: feature extraction failed (%s)", path, e)
            skipped.append([path, f"feature extraction failed ({type(e).__name__}: {e})"])
            continue
        if rows and v.shape != rows[0].shape:
            raise ValueError(f"{path}: extractor returned {v.shape[0]} features, "
                             f"earlier files {rows[0].shape[0]}")
        rows.append(v)
        files.append(path)
    d = rows[0].shape[0] if rows else (len(names) or 0)
    x = np.stack(rows) if rows else np.zeros((0, d), np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        log.warning("openSMILE %s: %d non-finite feature value(s) set to 0", feature_set, int(bad.sum()))
        x[bad] = 0.0
    save_npy_atomic(npy, x)
    return {"key_material": _key_material(config, feature_set, extractor_id),
            "feature_set": feature_set, "extractor": extractor_id, "n_features": int(d),
            "feature_names": names, "files": files, "skipped": skipped,
            "extract_time_s": round(time.time() - t0, 2)}


def extract_features(config, utterances: list[Utterance], cache_dir, feature_set: str,
                     extractor: Extractor | None = None, extractor_id: str | None = None,
                     progress: bool = True) -> FeatureTable:
    """One functionals vector per utterance, from cache_dir when the cache is there.

    Files are read as the spectrogram cache reads them (`load_audio` at data.sample_rate with
    `dataset.min_samples_for(config)`); those it refuses are skipped and left out, so the kept
    utterances are the ones `SegmentDataset.utterances` holds. `extractor` (a callable
    (wave, sample_rate) -> (d,)) replaces openSMILE, for tests; give it an `extractor_id`.
    """
    _check_set(feature_set)
    names: list[str] = []
    if extractor is None:
        extractor, default_id, names = opensmile_extractor(feature_set)
        extractor_id = extractor_id or default_id
    elif not extractor_id:
        raise ValueError("a custom extractor needs an extractor_id (it is part of the cache key)")
    paths = [os.path.abspath(u.path) for u in utterances]
    if len(set(paths)) != len(paths):
        raise ValueError("utterance paths listed twice")
    key = feature_cache_key(config, feature_set, extractor_id, paths)
    cache_dir = Path(cache_dir)
    stem = f"opensmile_{feature_set}_{key[:16]}"
    npy, index = cache_dir / f"{stem}.npy", cache_dir / f"{stem}.json"

    cached = _load_cache(npy, index, key)
    from_cache = cached is not None
    if cached is None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        meta = _extract_rows(config, sorted(paths), feature_set, extractor, extractor_id, names,
                             progress, npy)
        write_json_atomic(index, {"key": key, **meta})  # last: it names the key that makes the pair valid
        cached = _load_cache(npy, index, key)
        if cached is None:
            raise RuntimeError(f"openSMILE feature cache {npy} could not be read back after writing it")
    x, meta = cached
    row_of = {p: i for i, p in enumerate(meta["files"])}
    kept = [i for i, p in enumerate(paths) if p in row_of]
    table = FeatureTable(
        features=x[[row_of[paths[i]] for i in kept]] if kept else x[:0],
        utterances=[utterances[i] for i in kept],
        skipped=[(p, r) for p, r in meta["skipped"]],
        feature_names=list(meta.get("feature_names", [])),
        extractor_id=meta["extractor"],
        cache_path=os.fspath(npy),
        from_cache=from_cache,
        extract_time_s=float(meta.get("extract_time_s", 0.0)),
    )
    log.info("openSMILE %s: %d utterances x %d features, %d skipped, cache %s%s", feature_set,
             len(table.utterances), x.shape[1], len(table.skipped), npy, " (reused)" if from_cache else "")
    return table


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


def _fit_fold(config, table: FeatureTable, fold, variant, feature_set, c_select, C, refit):
    """(fitted model, result record) of one fold: the SVM fitted as `fit_fold` says, then
    scored once on the test speaker."""
    utts, classes = table.utterances, tuple(config.data.classes)
    num_classes = len(classes)
    emotion = np.array([classes.index(u.emotion) if u.emotion is not None else -1 for u in utts], np.int64)
    domain = domain_labels(config, utts).astype(np.int64)
    speakers = np.array([u.speaker for u in utts], dtype=object)
    t0 = time.time()
    model, info = fit_fold(table.features, emotion, speakers, fold, num_classes, c_select, C,
                           seed=int(config.train.seed), refit_on_val=refit)
    test = np.asarray(fold.test, np.int64)
    probs = model.probs(table.features[test], num_classes) if len(test) else np.zeros((0, num_classes))
    rows = [{"utterance": int(i), "path": utts[i].path, "speaker": utts[i].speaker,
             "emotion": int(emotion[i]), "gender": int(domain[i]), "segments": 1,
             "probs": p.round(6).tolist()} for i, p in zip(test, probs)]
    y = emotion[test]
    pred = np.argmax(probs, axis=1) if len(test) else np.zeros(0, np.int64)
    return model, fold_record(
        config, fold, variant, selection=f"C by {c_select}", selected_epoch=None,
        best_val_ua=None if not info["c_scores"] else info["c_scores"][f"{info['C']:g}"],
        epochs=None, steps=None, train_time_s=round(time.time() - t0, 2),
        baseline={"feature_set": feature_set, "extractor": table.extractor_id,
                  "n_features": int(table.features.shape[1]), "classifier":
                  "StandardScaler + SVC(kernel='linear', class_weight='balanced')", **info},
        test={"n": int(len(y)), "wa": metrics.weighted_accuracy(y, pred),
              "ua": metrics.unweighted_accuracy(y, pred, num_classes)},
        utterances=rows)


def _enrolled(config, raw: np.ndarray, utterances, fold, model) -> dict:
    """{'test_statistics': {'enrol:K': [[class or -1 per test utterance] per draw]}}: the test
    speaker's functionals z-scored with the statistics of K of its utterances (drawn as
    adarl_jax.train.test_statistics draws them; those K are not scored)."""
    section = config.get("eval")
    modes = [m for m in (section.get("test_statistics", ()) if section is not None else ())
             if parse_mode(m)[0] == "enrol"]
    test = np.asarray(fold.test, np.int64)
    by_speaker = {}
    for i in test:
        by_speaker.setdefault(utterances[i].speaker, []).append(int(i))
    by_speaker = {s: np.array(v) for s, v in by_speaker.items() if len(v) >= 2}
    if not modes or not by_speaker:
        return {}
    num_classes, out = len(config.data.classes), {}
    for mode in modes:
        k = parse_mode(mode)[1]
        rng = np.random.default_rng([int(config.train.seed), fold.index, k])
        runs = []
        for _ in range(int(section.get("enrol_draws", 5))):
            pred = {}
            for rows in by_speaker.values():
                enrolled = set(rng.choice(rows, size=min(k, len(rows) - 1), replace=False).tolist())
                ref = raw[sorted(enrolled)].astype(np.float64)
                x = ((raw[rows] - ref.mean(0)) / (ref.std(0) + 1e-8)).astype(np.float32)
                scored = np.argmax(model.probs(x, num_classes), axis=1)
                pred.update({int(i): -1 if int(i) in enrolled else int(p) for i, p in zip(rows, scored)})
            runs.append([pred.get(int(i), -1) for i in test])
        out[mode] = runs
    return {"test_statistics": out}


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
