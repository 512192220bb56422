"""The classic pipeline as a baseline: openSMILE functionals + a linear SVM, on the same LOSO
folds as the neural variants, written where `adarl_jax.report` finds them.

  W/cache/opensmile_<set>_<key16>.npy   (n_files, n_features) float32, one row per usable file
  W/cache/opensmile_<set>_<key16>.json  which row is which file, skipped files, feature names
  W/opensmile_<set>_svm/fold_<kk>_<speaker>/result.json   the trainer's result format
  W/opensmile_<set>_svm/fold_<kk>_<speaker>/model.npz     scaler and SVM weights (no pickle)

Per utterance: the whole file, mono 16 kHz (`audio.load_audio`, the same reader and the same
minimum length as the spectrogram cache, so the same files are usable and the folds are the
neural runs' folds), then `opensmile.Smile(feature_set, Functionals).process_signal`; one
vector per utterance, so `segments` is 1 and `probs` is not a mean over segments.

Per fold: standardisation (StandardScaler) fitted on the fitting speakers only, then
`SVC(kernel='linear', class_weight='balanced')`: libsvm's pairwise (one-vs-one) linear SVM
with the hinge loss, the classic openSMILE + SVM pipeline (as Weka's SMO in the challenge
baselines). The test speaker is touched once, at the end. The SVM cost C comes from `C_GRID`,
chosen without the test speaker (`c_select`):
  'val'    the fold's validation speakers (config.train.selection == 'val'): fit on the
           training speakers for each C, keep the best validation UA, then refit on training +
           validation speakers (all the non-test speakers) with that C;
  'inner'  leave-one-speaker-out over the training speakers (each inner fold standardised on
           its own fitting part), best mean inner UA; then refit on all training speakers. The
           default when config.train.selection == 'last' (the folds have no validation
           speakers): it needs no constant picked by hand;
  'fixed'  the given C (default `DEFAULT_C`, sklearn's default, not tuned).
Ties go to the smaller C (stronger regularisation). `probs` is the softmax of the SVM's
per-class scores (pairwise votes plus a confidence in (-1/3, 1/3), sklearn's 'ovr' shape):
argmax-consistent, not calibrated probabilities.

No deep feature is written (so Table 4 and the t-SNE skip the baselines).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from adarl_jax import metrics as M
from adarl_jax.audio import AudioError, load_audio
from adarl_jax.corpora import Utterance
from adarl_jax.dataset import file_stamp
from adarl_jax.files import read_json, save_npy_atomic, write_atomic, write_json_atomic
from adarl_jax.folds import loso_folds, parse_folds

__all__ = [
    "FEATURE_SETS", "C_GRID", "DEFAULT_C", "FeatureTable", "variant_name", "opensmile_available",
    "opensmile_extractor", "corpus_utterances", "extract_features", "LinearModel", "fit_svm", "fit_fold",
    "run_opensmile_svm", "run_baselines",
]

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the layout or the meaning of cached features changes
# short name -> openSMILE FeatureSet member
FEATURE_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
C_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
DEFAULT_C = 1.0  # 'fixed' mode only: sklearn's default
C_SELECT = ("auto", "val", "inner", "fixed")

# (wave float32 (n,), sample_rate) -> feature vector (d,)
Extractor = Callable[[np.ndarray, int], np.ndarray]


def variant_name(feature_set: str) -> str:
    return f"opensmile_{_check_set(feature_set)}_svm"


def _check_set(feature_set: str) -> str:
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"feature set {feature_set!r}: expected one of {', '.join(FEATURE_SETS)}")
    return feature_set


def opensmile_available() -> bool:
    try:
        import opensmile  # noqa: F401
    except Exception:  # ImportError, or its native library failing to load
        return False
    return True


def opensmile_extractor(feature_set: str) -> tuple[Extractor, str, list[str]]:
    """(extract, identity for the cache key, feature names) for an openSMILE functionals set."""
    try:
        import opensmile
    except ImportError as e:
        raise ImportError("the openSMILE baseline needs the `opensmile` package: "
                          "pip install 'adarl-jax[baselines]'") from e
    name = FEATURE_SETS[_check_set(feature_set)]
    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, name),
                            feature_level=opensmile.FeatureLevel.Functionals)

    def extract(wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return smile.process_signal(wave, sample_rate).to_numpy(dtype=np.float32)[0]

    return extract, f"opensmile {opensmile.__version__} {name} Functionals", list(smile.feature_names)


def corpus_utterances(config) -> list[Utterance]:
    """The utterances `loso.load_dataset` hands to the spectrogram cache (before files that
    cannot be read are dropped, which `extract_features` does with the same rule)."""
    from adarl_jax.config import default_data_dir
    from adarl_jax.corpora import load_corpus, select_classes, stratified_subset

    d = config.data
    data_dir = d.dir or (os.path.dirname(d.manifest) if d.manifest else default_data_dir(d.corpus))
    if not data_dir:
        raise FileNotFoundError(f"no data folder for corpus {d.corpus!r}: pass --data DIR")
    utterances = select_classes(load_corpus(d.corpus, data_dir, d.manifest), d.classes)
    if d.max_utterances:
        utterances = stratified_subset(utterances, int(d.max_utterances))
    return utterances


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
    from adarl_jax.dataset import min_samples_for

    return {"format": CACHE_FORMAT, "feature_set": feature_set, "extractor": extractor_id,
            "sample_rate": int(config.data.sample_rate), "min_samples": int(min_samples_for(config))}


def feature_cache_key(config, feature_set: str, extractor_id: str, paths) -> str:
    """sha256 over the feature set, the extractor (package version), the reading rule and each
    file's (path, size, mtime). Labels are not part of it."""
    stamps = sorted(file_stamp(os.path.abspath(p)) for p in paths)
    blob = json.dumps({**_key_material(config, feature_set, extractor_id), "files": stamps},
                      sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()


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


def extract_features(config, utterances: list[Utterance], cache_dir, feature_set: str,
                     extractor: Extractor | None = None, extractor_id: str | None = None,
                     progress: bool = True) -> FeatureTable:
    """One functionals vector per utterance, from cache_dir when the cache is there.

    Files are read as the spectrogram cache reads them (`load_audio` at data.sample_rate with
    `dataset.min_samples_for(config)`); those it refuses are skipped and left out, so the kept
    utterances are the ones `SegmentDataset.utterances` holds. `extractor` (a callable
    (wave, sample_rate) -> (d,)) replaces openSMILE, for tests; give it an `extractor_id`.
    """
    from adarl_jax.dataset import min_samples_for

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
        sr, min_samples = int(config.data.sample_rate), int(min_samples_for(config))
        rows, files, skipped = [], [], []
        t0 = time.time()
        for path in tqdm(sorted(paths), desc=f"openSMILE {FEATURE_SETS[feature_set]}", unit="file",
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
        meta = {"key": key, "key_material": _key_material(config, feature_set, extractor_id),
                "feature_set": feature_set, "extractor": extractor_id, "n_features": int(d),
                "feature_names": names, "files": files, "skipped": skipped,
                "extract_time_s": round(time.time() - t0, 2)}
        save_npy_atomic(npy, x)  # the index is written last: it names the key that makes the pair valid
        write_json_atomic(index, meta)
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


# ---------------------------------------------------------------------------------------------
# The SVM


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) as sklearn's StandardScaler: population std, 1 where a feature is constant."""
    from sklearn.preprocessing import StandardScaler

    s = StandardScaler().fit(x)
    return s.mean_.astype(np.float64), s.scale_.astype(np.float64)


def _ovo_to_ovr(dec: np.ndarray, n_classes: int) -> np.ndarray:
    """Pairwise decision values (i < j, positive = class i) to per-class scores: votes plus a
    confidence in (-1/3, 1/3), as sklearn's SVC.decision_function(decision_function_shape='ovr')."""
    votes = np.zeros((len(dec), n_classes))
    conf = np.zeros((len(dec), n_classes))
    k = 0
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            conf[:, i] += dec[:, k]
            conf[:, j] -= dec[:, k]
            votes[:, i] += dec[:, k] >= 0
            votes[:, j] += dec[:, k] < 0
            k += 1
    return votes + conf / (3 * (np.abs(conf) + 1))


@dataclass
class LinearModel:
    """Standardisation + a pairwise linear SVM, as arrays (saved as .npz, no pickle)."""

    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    coef: np.ndarray  # (pairs, d): one row per class pair (i, j), i < j, in `classes` order
    intercept: np.ndarray  # (pairs,)
    classes: np.ndarray  # class indices the SVM saw, into config.data.classes
    C: float

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(n, len(classes)) per-class scores: argmax = the SVM's prediction."""
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        dec = z @ self.coef.T + self.intercept
        if len(self.classes) == 2:  # one pair; positive = the second class (sklearn's binary sign)
            return np.concatenate([-dec, dec], axis=1)
        return _ovo_to_ovr(dec, len(self.classes))

    def probs(self, x: np.ndarray, num_classes: int) -> np.ndarray:
        """Softmax of the scores; classes the SVM never saw get probability 0."""
        full = np.full((len(x), num_classes), -np.inf)
        full[:, self.classes] = self.scores(x)
        full -= full.max(axis=1, keepdims=True)
        e = np.exp(full)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        write_atomic(path, "wb", lambda fh: np.savez(
            fh, mean=self.mean, scale=self.scale, coef=self.coef, intercept=self.intercept,
            classes=self.classes, C=np.float64(self.C)))

    @classmethod
    def load(cls, path) -> "LinearModel":
        with np.load(path, allow_pickle=False) as f:
            return cls(mean=f["mean"], scale=f["scale"], coef=f["coef"], intercept=f["intercept"],
                       classes=f["classes"], C=float(f["C"]))


def _svc(C: float, kernel: str, seed: int):
    from sklearn.svm import SVC

    return SVC(C=C, kernel=kernel, class_weight="balanced", random_state=seed)


def _check_classes(y: np.ndarray) -> None:
    if len(np.unique(y)) < 2:
        raise ValueError(f"the SVM needs at least two emotion classes to fit, got {np.unique(y).tolist()}")


def fit_svm(x: np.ndarray, y: np.ndarray, C: float, seed: int = 0) -> LinearModel:
    """Standardisation fitted on x, then SVC(kernel='linear', C, class_weight='balanced')."""
    _check_classes(y)
    mean, scale = _standardiser(x)
    svm = _svc(C, "linear", seed).fit((np.asarray(x, np.float64) - mean) / scale, y)
    return LinearModel(mean=mean, scale=scale, coef=np.asarray(svm.coef_, np.float64),
                       intercept=np.asarray(svm.intercept_, np.float64),
                       classes=svm.classes_.astype(np.int64), C=float(C))


def _grid_ua(x_fit, y_fit, x_eval, y_eval, grid, num_classes: int, seed: int) -> dict[float, float]:
    """UA on (x_eval, y_eval) of the SVM fitted on (x_fit, y_fit) for each C: standardised on
    x_fit only, one Gram matrix shared by the grid (the linear kernel, precomputed)."""
    _check_classes(y_fit)
    mean, scale = _standardiser(x_fit)
    z_fit = (np.asarray(x_fit, np.float64) - mean) / scale
    z_eval = (np.asarray(x_eval, np.float64) - mean) / scale
    gram, cross = z_fit @ z_fit.T, z_eval @ z_fit.T
    return {c: M.unweighted_accuracy(y_eval, _predict(_svc(c, "precomputed", seed).fit(gram, y_fit), cross),
                                     num_classes) for c in grid}


def _predict(svm, x) -> np.ndarray:
    """The class of the highest score, as `LinearModel.probs` picks it (pairwise votes, ties
    broken by confidence, i.e. SVC(break_ties=True), not SVC.predict's lowest index)."""
    d = svm.decision_function(x)
    return svm.classes_[(d > 0).astype(int) if d.ndim == 1 else np.argmax(d, axis=1)]


def _best(scores: dict[float, float]) -> float:
    """The C with the highest score; ties go to the smaller C (stronger regularisation)."""
    best_c, best_s = None, -np.inf
    for c in sorted(scores):
        s = scores[c]
        if not np.isnan(s) and s > best_s + 1e-12:
            best_c, best_s = c, s
    return min(scores) if best_c is None else best_c


def fit_fold(x: np.ndarray, emotion: np.ndarray, speakers: np.ndarray, fold, num_classes: int,
             c_select: str, C: float | None = None, grid=C_GRID, seed: int = 0):
    """Chooses C without the test speaker, fits the final model; returns (model, info).

    x, emotion (-1 = unlabelled), speakers: per utterance, indexed like the fold's arrays.
    """
    train = np.array([i for i in fold.train if emotion[i] >= 0], np.int64)
    val = np.array([i for i in fold.val if emotion[i] >= 0], np.int64)
    if len(train) == 0:
        raise ValueError(f"fold {fold.index}: no emotion-labelled training utterance")
    scores: dict[float, float] = {}
    if c_select == "fixed":
        if C is None:
            raise ValueError("c_select='fixed' needs C")
        chosen, fit_rows = float(C), train
    elif c_select == "val":
        if len(val) == 0:
            raise ValueError(f"fold {fold.index}: c_select='val' but the fold has no validation "
                             "utterances (set train.selection='val' and train.val_speakers_per_gender)")
        scores = _grid_ua(x[train], emotion[train], x[val], emotion[val], grid, num_classes, seed)
        chosen, fit_rows = _best(scores), np.concatenate([train, val])
    elif c_select == "inner":
        inner = sorted(set(speakers[train].tolist()))
        if len(inner) < 2:
            raise ValueError(f"fold {fold.index}: c_select='inner' needs two training speakers")
        per_c: dict[float, list[float]] = {c: [] for c in grid}
        for s in inner:
            fit_i, held = train[speakers[train] != s], train[speakers[train] == s]
            if len(np.unique(emotion[fit_i])) < 2:
                continue
            for c, ua in _grid_ua(x[fit_i], emotion[fit_i], x[held], emotion[held], grid,
                                  num_classes, seed).items():
                per_c[c].append(ua)
        scores = {c: float(np.nanmean(v)) if v else float("nan") for c, v in per_c.items()}
        chosen, fit_rows = _best(scores), train
    else:
        raise ValueError(f"c_select={c_select!r}: expected one of {', '.join(C_SELECT)}")
    model = fit_svm(x[fit_rows], emotion[fit_rows], chosen, seed)
    info = {"C": chosen, "c_select": c_select,
            "c_grid": [float(c) for c in grid] if scores else None,
            "c_scores": {f"{c:g}": (None if np.isnan(s) else round(float(s), 6))
                         for c, s in scores.items()} or None,
            "fit_speakers": sorted(set(speakers[fit_rows].tolist())), "n_fit": int(len(fit_rows))}
    return model, info


def _resolve_c_select(config, c_select: str) -> str:
    if c_select not in C_SELECT:
        raise ValueError(f"c_select={c_select!r}: expected one of {', '.join(C_SELECT)}")
    if c_select == "auto":
        return "val" if config.train.selection == "val" else "inner"
    return c_select


def fold_dir(workdir, variant: str, fold) -> Path:
    """Same naming as `loso.fold_dir`."""
    return Path(workdir) / variant / f"fold_{fold.index:02d}_{fold.test_speaker}"


def run_opensmile_svm(config, workdir, feature_set: str, folds: str | None = None,
                      utterances: list[Utterance] | None = None, c_select: str = "auto",
                      C: float | None = None, extractor: Extractor | None = None,
                      extractor_id: str | None = None, progress: bool = True,
                      write: bool = True, blas_threads: int | None = 1) -> list[dict]:
    """openSMILE `feature_set` ('egemaps' | 'compare') functionals + linear SVM over the LOSO
    folds of the neural runs; writes and returns one result record per fold.

    `utterances`: the list the neural runs' folds are made of (`loso.load_dataset(...).utterances`);
    default: the config's corpus read as `loso.load_dataset` reads it. `folds`: a `--folds`
    string. A fold whose result.json exists is loaded, not refitted. `write=False` on all but
    one process of a multi-process run. `blas_threads`: BLAS threads while fitting (the
    matrices are small; on a busy CPU more threads are much slower); None leaves them be.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads):
        return _run(config, workdir, feature_set, folds, utterances, c_select, C, extractor,
                    extractor_id, progress, write)


def _run(config, workdir, feature_set, folds, utterances, c_select, C, extractor, extractor_id,
         progress, write) -> list[dict]:
    variant = variant_name(feature_set)
    c_select = _resolve_c_select(config, c_select)
    if c_select == "fixed" and C is None:
        C = DEFAULT_C
    workdir = Path(workdir)
    if utterances is None:
        utterances = corpus_utterances(config)
    table = extract_features(config, utterances, workdir / "cache", feature_set, extractor,
                             extractor_id, progress)
    utts = table.utterances
    classes, genders = tuple(config.data.classes), tuple(config.data.genders)
    emotion = np.array([classes.index(u.emotion) if u.emotion is not None else -1 for u in utts], np.int64)
    gender = np.array([genders.index(u.gender) for u in utts], np.int64)
    speakers = np.array([u.speaker for u in utts], dtype=object)
    val_k = int(config.train.val_speakers_per_gender) if config.train.selection == "val" else 0
    all_folds = loso_folds(utts, val_k, int(config.train.split_seed))
    chosen = [all_folds[i] for i in parse_folds(folds, len(all_folds))]
    num_classes = len(classes)

    results = []
    for fold in chosen:
        out_dir = fold_dir(workdir, variant, fold)
        result_path = out_dir / "result.json"
        if result_path.exists():
            log.info("%s fold %d (%s): finished, skipping", variant, fold.index, fold.test_speaker)
            results.append(read_json(result_path))
            continue
        t0 = time.time()
        model, info = fit_fold(table.features, emotion, speakers, fold, num_classes, c_select, C,
                               seed=int(config.train.seed))
        test = np.asarray(fold.test, np.int64)
        probs = model.probs(table.features[test], num_classes) if len(test) else np.zeros((0, num_classes))
        rows = [{"utterance": int(i), "path": utts[i].path, "speaker": utts[i].speaker,
                 "emotion": int(emotion[i]), "gender": int(gender[i]), "segments": 1,
                 "probs": p.round(6).tolist()} for i, p in zip(test, probs)]
        y = emotion[test]
        pred = np.argmax(probs, axis=1) if len(test) else np.zeros(0, np.int64)
        result = {
            "variant": variant,
            "fold": fold.index,
            "test_speaker": fold.test_speaker,
            "train_speakers": list(fold.train_speakers),
            "val_speakers": list(fold.val_speakers),
            "classes": list(classes),
            "genders": list(genders),
            "selection": f"C by {c_select}",
            "selected_epoch": None,
            "best_val_ua": None if not info["c_scores"] else info["c_scores"][f"{info['C']:g}"],
            "epochs": None,
            "steps": None,
            "train_time_s": round(time.time() - t0, 2),
            "seed": int(config.train.seed),
            "baseline": {"feature_set": feature_set, "extractor": table.extractor_id,
                         "n_features": int(table.features.shape[1]), "classifier":
                         "StandardScaler + SVC(kernel='linear', class_weight='balanced')", **info},
            "test": {"n": int(len(y)), "wa": M.weighted_accuracy(y, pred),
                     "ua": M.unweighted_accuracy(y, pred, num_classes)},
            "utterances": rows,
        }
        if write:
            out_dir.mkdir(parents=True, exist_ok=True)
            model.save(out_dir / "model.npz")
            write_json_atomic(result_path, result)
        if progress:
            t = result["test"]
            print(f"[{variant}] fold {fold.index} ({fold.test_speaker}): WA {t['wa']:.3f} UA {t['ua']:.3f} "
                  f"C {info['C']:g} ({result['train_time_s']:.1f} s)", flush=True)
        results.append(result)
    return results


def run_baselines(config, workdir, feature_sets=("egemaps", "compare"), folds: str | None = None,
                  utterances: list[Utterance] | None = None, progress: bool = True,
                  write: bool = True) -> dict[str, list[dict]]:
    """Both openSMILE baselines; {variant: results}. Skips them, with a warning, when the
    `opensmile` package is not installed (the optional `[baselines]` extra)."""
    if not opensmile_available():
        log.warning("openSMILE baselines skipped: pip install 'adarl-jax[baselines]' to add them")
        if progress:
            print("openSMILE baselines skipped: the `opensmile` package is not installed "
                  "(pip install 'adarl-jax[baselines]')", flush=True)
        return {}
    if utterances is None:
        utterances = corpus_utterances(config)
    return {variant_name(fs): run_opensmile_svm(config, workdir, fs, folds, utterances,
                                                progress=progress, write=write)
            for fs in feature_sets}
