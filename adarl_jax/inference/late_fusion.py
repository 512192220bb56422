"""A final model that is a late fusion: the CNN's class probabilities averaged with those of
linear SVMs on the recording's openSMILE functionals (the system of
adarl_jax.report.late_fusion, which scores it over the LOSO folds).

`train --final` of the fusion's CNN variant writes the SVMs into its model folder
(`late_fusion.npz`, hashed in model.json like every file): per functionals set, the
standardisation and pairwise linear SVM fitted on every training speaker's functionals
z-scored with that speaker's statistics, the pooled moments of the raw functionals, and a
second SVM fitted on the raw functionals of every speaker (its scaler standardises them
globally, no speaker statistics needed).
`Predictor.load` of such a folder returns a `FusedPredictor`:

  p = Predictor.load("runs/emodb/final/adarl")   # FusedPredictor when the folder holds SVMs
  p.predict_files(["a.wav"], speakers="call")    # probs: mean of the CNN and each SVM

Each input's functionals are standardised as its spectrogram is, by its speaker group
(adarl_jax.inference.speakers), with the group's own moments, when the group holds at least
model.json's `late_fusion.global_below` recordings (adarl_jax.report.late_fusion.GLOBAL_BELOW;
the speaker of `adapt_to_speaker` counts its distinct describable recordings); a smaller
group and `training` take the globally standardised SVMs, whose functionals need no
speaker's moments. A folder written
before the global SVMs (no `global_below`) standardises a small group with its own moments and
a group of one recording, or `training`, with the training speakers' pooled moments (a note in
its warning column). A timeline, the embeddings and `export` are the CNN's alone.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from adarl_jax.baselines.linear_svm import LinearModel
from adarl_jax.data.functionals import moments
from adarl_jax.inference.model_folder import ModelFolderError, checked_file
from adarl_jax.inference.predict import distinct_paths
from adarl_jax.inference.speakers import SPEAKER_FROM, TRAINING_GROUP

__all__ = ["LATE_FUSION_FILE", "FunctionalsSVM", "FusedPredictor", "svms_bytes", "read_svms",
           "global_below"]

LATE_FUSION_FILE = "late_fusion.npz"
_FIELDS = ("mean", "scale", "coef", "intercept", "classes", "C")


@dataclass
class FunctionalsSVM:
    """One member of the fusion: an SVM on one openSMILE set's per-speaker standardised
    functionals, the training speakers' pooled moments of its raw functionals, and the SVM on
    the raw functionals that stands in for a small speaker group (None in older folders)."""

    feature_set: str
    model: LinearModel
    train_mean: np.ndarray
    train_std: np.ndarray
    global_model: LinearModel | None = None


def svms_bytes(svms: list[FunctionalsSVM]) -> bytes:
    """late_fusion.npz: '<set>/<field>' arrays, numpy alone reads them (no pickle)."""
    arrays = {}
    for s in svms:
        for field in _FIELDS:
            arrays[f"{s.feature_set}/{field}"] = np.asarray(getattr(s.model, field))
        arrays[f"{s.feature_set}/train_mean"] = np.asarray(s.train_mean, np.float64)
        arrays[f"{s.feature_set}/train_std"] = np.asarray(s.train_std, np.float64)
        if s.global_model is not None:
            for field in _FIELDS:
                arrays[f"{s.feature_set}/global_{field}"] = np.asarray(getattr(s.global_model, field))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def global_below(folder, meta: dict) -> int | None:
    """model.json's `late_fusion.global_below` (None: a folder written before the global SVMs)."""
    value = (meta.get("late_fusion") or {}).get("global_below")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ModelFolderError(f"{os.path.join(folder, 'model.json')}: late_fusion.global_below "
                               f"is {value!r}, expected a whole number of at least 1")
    return value


def read_svms(folder, meta: dict) -> list[FunctionalsSVM] | None:
    """The folder's SVMs in model.json's order (None when it holds no late fusion), the file's
    hash checked; a ModelFolderError names what is wrong."""
    fusion = meta.get("late_fusion")
    if fusion is None:
        return None
    sets = fusion.get("functionals") if isinstance(fusion, dict) else None
    if not isinstance(sets, list) or not sets:
        raise ModelFolderError(f"{os.path.join(folder, 'model.json')}: late_fusion.functionals "
                               "must list the SVMs' openSMILE sets; write the folder again "
                               "(train --final --overwrite-final)")
    with_global = global_below(folder, meta) is not None
    data = checked_file(folder, LATE_FUSION_FILE, meta)
    path = os.path.join(folder, LATE_FUSION_FILE)

    def linear(stored: dict, prefix: str) -> LinearModel:
        return LinearModel(**{f: stored[f"{prefix}{f}"] for f in _FIELDS[:-1]},
                           C=float(stored[f"{prefix}C"]))

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files}
        return [FunctionalsSVM(fs, linear(stored, f"{fs}/"), stored[f"{fs}/train_mean"],
                               stored[f"{fs}/train_std"],
                               linear(stored, f"{fs}/global_") if with_global else None)
                for fs in sets]
    except (OSError, ValueError) as e:
        raise ModelFolderError(f"{path}: not a readable npz file ({e})") from None
    except KeyError as e:
        raise ModelFolderError(f"{path}: no array {e} for the SVMs model.json names") from None


class FusedPredictor:
    """A `Predictor` (the CNN) and the SVMs of a late fusion: `predict_files` and
    `predict_batch` return the CNN's records with 'probs' and 'emotion' those of the mean of
    the CNN's and every SVM's probabilities. Everything else is the CNN predictor's."""

    def __init__(self, predictor, svms: list[FunctionalsSVM], global_below: int | None = None):
        self.predictor = predictor
        self.svms = list(svms)
        self.global_below = global_below
        if global_below is not None and any(s.global_model is None for s in self.svms):
            raise ValueError("global_below needs every SVM's global_model")
        self.source = f"{predictor.source}, late fusion with " + ", ".join(
            f"{s.feature_set} + SVM" for s in self.svms)
        self.late_fusion = [s.feature_set for s in self.svms]
        self.adapted = None  # adapt_to_speaker's {set: moments of the speaker's functionals}
        self.adapted_count = 0  # and how many distinct describable recordings gave them

    def __getattr__(self, name):  # classes, default_speaker_from, uses_speaker_norm, ...
        if name == "predictor":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.predictor, name)

    def adapt_to_speaker(self, paths=None, waveform=None, sample_rate: int | None = None) -> None:
        """`Predictor.adapt_to_speaker` for the CNN and the SVMs alike: the speaker's audio
        standardises every input that follows (its functionals' moments; fewer distinct
        describable recordings than `global_below` and the global SVMs stand in); with neither
        argument, forget them."""
        paths = None if paths is None else distinct_paths(paths)
        self.predictor.adapt_to_speaker(paths, waveform, sample_rate)
        self.adapted, self.adapted_count = None, 0
        if paths is None and waveform is None:
            return
        rows = {svm.feature_set: self.predictor.speaker_rows(svm.feature_set, paths, waveform,
                                                             sample_rate)
                for svm in self.svms}
        self.adapted = {fs: moments(np.stack(r)) if r else None for fs, r in rows.items()}
        self.adapted_count = min(len(r) for r in rows.values())

    def _small(self, keys: list, groups: list, raw: dict) -> list[bool]:
        """Per input, whether the global SVMs score it: `training`, or a speaker group (the
        adapted speaker after adapt_to_speaker) of fewer than `global_below` distinct
        recordings whose functionals could be read."""
        if self.global_below is None:
            return [False] * len(keys)
        if self.predictor.speaker_norm is not None:
            return [self.adapted_count < self.global_below] * len(keys)
        size = Counter(g for k, g in dict.fromkeys(zip(keys, groups)) if raw[k] is not None)
        return [g == TRAINING_GROUP or size[g] < self.global_below for g in groups]

    def svm_probs(self, keys: list, loaders: list, groups: list) -> tuple[list, list]:
        """Per input, the mean of the SVMs' probabilities (None: openSMILE could not describe
        its audio) and a warning line or None. `keys` name the distinct inputs, `loaders` give
        each one's waveform at the model's rate, `groups` its speaker group. A small group
        (`_small`) is scored by the global SVMs on its raw functionals; a larger one by the
        per-speaker SVMs, its functionals standardised as `Predictor.standardised_functionals`
        says (adapt_to_speaker's speaker's moments after `adapt_to_speaker`). In a folder
        without global SVMs, TRAINING_GROUP and a group of one recording (which has no moments
        of its own) take the kept training moments."""
        k = len(self.predictor.classes)
        total = [np.zeros(k) for _ in keys]
        notes = [None] * len(keys)
        for svm in self.svms:
            training = (svm.train_mean, svm.train_std)
            adapted = self.adapted[svm.feature_set] if self.adapted is not None else None
            raw = self.predictor.raw_by_input(keys, loaders, svm.feature_set)
            rows, lonely = self.predictor.standardised_functionals(
                keys, groups, loaders, svm.feature_set, training, adapted or training,
                lone=training, raw=raw)
            for i, (key, z, alone, small) in enumerate(zip(keys, rows, lonely,
                                                           self._small(keys, groups, raw))):
                if z is None or total[i] is None:
                    total[i] = None
                elif small:
                    total[i] = total[i] + svm.global_model.probs(raw[key][None], k)[0]
                else:
                    if alone:
                        notes[i] = ("the late fusion's functionals standardised with the "
                                    "training speakers' moments (its speaker group is one "
                                    "recording)")
                    total[i] = total[i] + svm.model.probs(z[None], k)[0]
        return [None if t is None else t / len(self.svms) for t in total], notes

    def _fuse(self, records: list[dict], svm: tuple[list, list]) -> list[dict]:
        classes = self.predictor.classes
        n = 1 + len(self.svms)
        for rec, p, note in zip(records, *svm):
            if rec["error"] is not None:
                continue
            if note:
                rec["warning"] = "; ".join(w for w in (rec["warning"], note) if w)
            if p is None:
                rec.update(emotion=None, probs=None, error="openSMILE could not describe its "
                           "audio (the late fusion's SVMs read its functionals)")
                continue
            cnn = np.array([rec["probs"][c] for c in classes])
            fused = (cnn + (n - 1) * p) / n  # the CNN and each SVM weigh alike
            rec["emotion"] = classes[int(np.argmax(fused))]
            rec["probs"] = {c: round(float(x), 6) for c, x in zip(classes, fused)}
        return records

    def predict_files(self, paths, speakers=None, **kwargs) -> list[dict]:
        """`Predictor.predict_files`, each record's probabilities fused."""
        paths = [os.fspath(p) for p in paths]
        records = self.predictor.predict_files(paths, speakers=speakers, **kwargs)
        loaders = [self.predictor.file_loader(p) for p in paths]
        groups = self.predictor._speaker_groups(paths, speakers, rules=SPEAKER_FROM, noun="path")
        keys = [os.path.abspath(p) for p in paths]
        return self._fuse(records, self.svm_probs(keys, loaders, groups))

    def predict_batch(self, waveforms, sample_rate: int, speakers=None, **kwargs) -> list[dict]:
        """`Predictor.predict_batch`, each record's probabilities fused."""
        from adarl_jax.data.audio import prepare_wave

        waves = [np.asarray(w) for w in waveforms]
        records = self.predictor.predict_batch(waves, sample_rate, speakers=speakers, **kwargs)
        prepared = [prepare_wave(w, sample_rate, self.predictor.sample_rate,
                                 self.predictor.min_samples,
                                 channels_first=kwargs.get("channels_first", False)) for w in waves]
        groups = self.predictor._speaker_groups([f"wave {i}" for i in range(len(waves))],
                                                speakers, rules=("call", "training"),
                                                noun="recording")
        fused = self._fuse(records, self.svm_probs(list(range(len(prepared))),
                                                   [lambda w=w: w for w in prepared], groups))
        for i, rec in enumerate(fused):
            if rec["error"]:
                raise ValueError(f"waveforms[{i}]: {rec['error']}")
        return fused

    def predict(self, waveform, sample_rate: int, **kwargs) -> dict:
        return self.predict_batch([waveform], sample_rate, **kwargs)[0]
