"""openSMILE functionals per utterance, extracted once and cached: what the baselines' SVM
and the fusion variants read (`model.functionals`, see `attach_functionals`).

  W/cache/opensmile_<set>_<key16>.npy   (n_files, n_features) float32, one row per usable file
  W/cache/opensmile_<set>_<key16>.json  which row is which file, skipped files, feature names

Per utterance: the whole file, mono at data.sample_rate (`audio.load_audio`, the same reader and
minimum length as the spectrogram cache, so the same files are usable; its silence at both ends
cut when `data.trim_db` > 0, as the spectrograms' is), then
`opensmile.Smile(feature_set, Functionals).process_signal`. openSMILE is the optional
`[baselines]` extra (`pip install 'adarl-jax[baselines]'`; `[all]` has it).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from adarl_jax.data.audio import AudioError, load_audio, trim_silence
from adarl_jax.data.corpora import Utterance
from adarl_jax.data.feature_cache import min_samples_for, stamps_key
from adarl_jax.extras import require
from adarl_jax.host import available_cores
from adarl_jax.model.registry import variant_of
from adarl_jax.workdir.files import read_json, save_npy_atomic, write_json_atomic

__all__ = ["FEATURE_SETS", "FEATURE_DIMS", "FeatureTable", "Extractor", "opensmile_module",
           "opensmile_extractor", "extract_features", "speaker_zscore", "group_zscore", "moments",
           "check_feature_set", "DOMAIN_SET", "domain_onehot", "functionals_of", "functionals_dim", "model_functionals", "attach_functionals",
           "segment_functionals"]

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the layout or the meaning of cached features changes
# short name -> openSMILE FeatureSet member
FEATURE_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
FEATURE_DIMS = {"egemaps": 88, "compare": 6373}  # features per utterance of each set
# Not openSMILE: the one-hot of each utterance's domain label (data.genders' order; zeros when
# unknown), never standardised. What an oracle variant reads: in LOSO the test speaker's domain
# is known, a new recording's is not, so `predict` and `export` refuse a model that reads it.
DOMAIN_SET = "domain"

# (wave float32 (n,), sample_rate) -> feature vector (d,); called from several threads at once
Extractor = Callable[[np.ndarray, int], np.ndarray]
EXTRACT_THREADS_PER_CORE = 2  # a thread's file reading waits while another's extraction computes


def moments(rows: np.ndarray, eps: float = 1e-8):
    """(mean, std + eps) over the rows of a (n, d) array (ddof 0, float64); None for fewer than
    two rows (one recording gives no spread to standardise others with)."""
    x = np.asarray(rows, np.float64)
    if len(x) < 2:
        return None
    return x.mean(0), x.std(0) + eps


def group_zscore(features: np.ndarray, groups: np.ndarray, stats: dict | None = None,
                 eps: float = 1e-8) -> np.ndarray:
    """Each row standardised with its group's (mean, std): from `stats` ({group: moments})
    when given, else the group's own rows (ddof 0). A group without statistics (one row, or
    None in `stats`) gets zeros: the functionals then say nothing. float32 out."""
    out = np.zeros(features.shape, np.float64)
    for g in dict.fromkeys(np.asarray(groups).tolist()):
        rows = np.asarray(groups) == g
        m = stats.get(g) if stats is not None else moments(features[rows], eps)
        if m is not None:
            out[rows] = (np.asarray(features[rows], np.float64) - m[0]) / m[1]
    return out.astype(np.float32)


def speaker_zscore(features: np.ndarray, speakers: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Each speaker's rows standardised with that speaker's own mean and std (ddof 0):
    the functionals' counterpart of frontend.normalize='speaker' (unlabelled rows count)."""
    return group_zscore(features, np.asarray(speakers), eps=eps)


def check_feature_set(feature_set: str, labels: bool = False) -> str:
    """`feature_set` if it names an openSMILE set (or, with `labels`, DOMAIN_SET)."""
    known = list(FEATURE_SETS) + ([DOMAIN_SET] if labels else [])
    if feature_set not in known:
        raise ValueError(f"feature set {feature_set!r}: expected one of {', '.join(known)}")
    return feature_set


def opensmile_module():
    return require("opensmile", "baselines", "the openSMILE baseline")


def opensmile_extractor(feature_set: str) -> tuple[Extractor, str, list[str]]:
    """(extract, identity for the cache key, feature names) for an openSMILE functionals set."""
    opensmile = opensmile_module()
    name = FEATURE_SETS[check_feature_set(feature_set)]
    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, name),
                            feature_level=opensmile.FeatureLevel.Functionals)

    def extract(wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return smile.process_signal(wave, sample_rate).to_numpy(dtype=np.float32)[0]

    return extract, f"opensmile {opensmile.__version__} {name} Functionals", list(smile.feature_names)



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
            "sample_rate": int(config.data.sample_rate), "min_samples": int(min_samples_for(config)),
            # only when set, so that caches made before the field keep their keys
            **({"trim_db": float(config.data.trim_db)} if config.data.trim_db else {})}


def read_for_functionals(path, config) -> np.ndarray:
    """A file as the functionals read it: `load_audio` at data.sample_rate, its silence at both
    ends cut as the spectrograms' is (`data.trim_db`)."""
    min_samples = int(min_samples_for(config))
    wave = load_audio(path, int(config.data.sample_rate), min_samples=min_samples)
    return trim_silence(wave, int(config.data.sample_rate), float(config.data.trim_db),
                        min_samples)[0]


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


def _row_of_file(path, config, extractor) -> tuple[np.ndarray | None, str]:
    """(the file's feature vector, '') or (None, why the file is skipped)."""
    try:
        wave = read_for_functionals(path, config)
    except AudioError as e:
        return None, e.reason
    try:
        return np.asarray(extractor(wave, int(config.data.sample_rate)), np.float32).reshape(-1), ""
    except Exception as e:  # the extractor failing on one file must not lose the rest
        return None, f"feature extraction failed ({type(e).__name__}: {e})"


def _extract_rows(config, paths, feature_set, extractor, extractor_id, names, progress, npy) -> dict:
    """Reads and extracts every file of `paths`, writes the matrix to `npy`; returns the index
    (without its key). Files are read and extracted in EXTRACT_THREADS_PER_CORE threads per
    core (openSMILE and the audio readers release the GIL, and openSMILE's own
    `process_files` runs its extractions in threads the same way); rows keep `paths`' order."""
    rows, files, skipped = [], [], []
    t0 = time.time()
    threads = max(1, min(len(paths), EXTRACT_THREADS_PER_CORE * len(available_cores())))
    pool = ThreadPoolExecutor(threads)
    try:  # on an error or Ctrl-C the files not yet started are dropped, not waited for
        done = pool.map(lambda p: _row_of_file(p, config, extractor), paths)
        for path, (v, reason) in tqdm(zip(paths, done), total=len(paths), unit="file",
                                      desc=f"openSMILE {FEATURE_SETS[feature_set]}",
                                      disable=not progress):
            if v is None:
                log.warning("skipping %s: %s", path, reason)
                skipped.append([path, reason])
                continue
            if rows and v.shape != rows[0].shape:
                raise ValueError(f"{path}: extractor returned {v.shape[0]} features, "
                                 f"earlier files {rows[0].shape[0]}")
            rows.append(v)
            files.append(path)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
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
    (wave, sample_rate) -> (d,), called from several threads at once) replaces openSMILE, for
    tests; give it an `extractor_id`.
    """
    check_feature_set(feature_set)
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




# ---------------------------------------------------------------------------------------------
# The functionals a model reads


def functionals_of(config) -> str:
    """The openSMILE set the config's variant reads (`model.functionals`), '' when it reads none."""
    info = variant_of(config)
    if not info.uses_functionals:
        return ""
    return check_feature_set(info.settings(config.model)["functionals"], labels=True)


def functionals_dim(config) -> int:
    """Functionals per segment the config's model reads (0: none)."""
    feature_set = functionals_of(config)
    if feature_set == DOMAIN_SET:
        return len(config.data.genders)
    return FEATURE_DIMS[feature_set] if feature_set else 0


def domain_onehot(domain: np.ndarray, n_domains: int) -> np.ndarray:
    """(n, n_domains) float32 one-hot of domain labels; an unknown label (-1) is a row of zeros."""
    domain = np.asarray(domain)
    return ((domain[:, None] == np.arange(n_domains)[None, :]) & (domain[:, None] >= 0)).astype(np.float32)


def model_functionals(config, raw: np.ndarray, speakers) -> np.ndarray:
    """What the model reads from raw functionals (n, d): each speaker's rows standardised with
    that speaker's own statistics under frontend.normalize='speaker' (as the spectrogram is),
    else the raw values (the model's own BatchNorm standardises them with the training
    statistics it keeps, so one recording needs nothing else)."""
    if config.frontend.normalize == "speaker":
        return speaker_zscore(raw, np.asarray(speakers, object))
    return np.asarray(raw, np.float32)


def attach_functionals(config, dataset, progress: bool = True):
    """Fills `dataset.functionals` (n_utt, d) for the config's variant when it reads functionals
    (in place; once per feature set). Extracted or read from the cache beside the spectrogram
    cache (`W/cache`, shared with the baselines). Returns `dataset`."""
    feature_set = functionals_of(config)
    if not feature_set or dataset.functionals_set == feature_set:
        return dataset
    if feature_set == DOMAIN_SET:  # labels, not audio: nothing to extract or standardise
        dataset.functionals_raw = dataset.functionals = domain_onehot(dataset.domain,
                                                                      len(config.data.genders))
        dataset.functionals_set = feature_set
        return dataset
    cache = Path(dataset.cache_dir).parent if dataset.cache_dir else Path(".adarl_cache")
    table = extract_features(config, dataset.utterances, cache, feature_set, progress=progress)
    if len(table.utterances) != len(dataset.utterances):
        bad = sorted(set(u.path for u in dataset.utterances) - set(u.path for u in table.utterances))
        raise ValueError(f"openSMILE {feature_set} could not describe {len(bad)} file(s) the "
                         f"spectrogram front end reads: {', '.join(bad[:5])}; a model with "
                         f"model.functionals needs both for every file")
    dataset.functionals_raw = table.features
    dataset.functionals = model_functionals(config, table.features,
                                            [u.speaker for u in dataset.utterances])
    dataset.functionals_set = feature_set
    return dataset


def segment_functionals(dataset, segments: np.ndarray) -> np.ndarray | None:
    """The functionals row of each segment's utterance, None when the dataset has none."""
    if dataset.functionals is None:
        return None
    return np.asarray(dataset.functionals[dataset.segment_utt[segments]], np.float32)
