"""The baselines' classifier: standardisation + a pairwise linear SVM per LOSO fold, with its
cost C chosen without the test speaker.

Per fold: standardisation (StandardScaler) fitted on the fitting speakers only, then
`SVC(kernel='linear', class_weight='balanced')`: libsvm's pairwise (one-vs-one) linear SVM
with the hinge loss, the classic openSMILE + SVM pipeline (as Weka's SMO in the challenge
baselines). The SVM cost C comes from `C_GRID`, chosen without the test speaker (`c_select`):
  'val'    the fold's validation speakers: fit on the training speakers for each C, keep the
           best validation UA;
  'inner'  leave-one-speaker-out over the training speakers (each inner fold standardised on
           its own fitting part), best mean inner UA;
  'fixed'  the given C (not tuned).
Ties go to the smaller C (stronger regularisation).

The final model is fitted on the speakers the neural variants train on: the fold's training
speakers, never its validation speakers (`refit_on_val=False`, the default), so CNN and SVM
see the same speakers. `refit_on_val=True` refits on training + validation speakers with the
chosen C; the neural variants have no such option (they always train on the training speakers
only), so a comparison under it is not like-for-like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adarl_jax import metrics
from adarl_jax.workdir.files import write_atomic
from adarl_jax.extras import require

__all__ = ["C_GRID", "DEFAULT_C", "C_SELECT", "LinearModel", "fit_svm", "fit_fold"]

C_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
DEFAULT_C = 1.0  # 'fixed' mode only: sklearn's default
C_SELECT = ("auto", "val", "inner", "fixed")




def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) as sklearn's StandardScaler: population std, 1 where a feature is constant."""
    StandardScaler = require("sklearn.preprocessing", "baselines", "the SVM baselines").StandardScaler
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
    SVC = require("sklearn.svm", "baselines", "the SVM baselines").SVC
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
    models = {c: _svc(c, "precomputed", seed).fit(gram, y_fit) for c in grid}
    return {c: metrics.unweighted_accuracy(y_eval, _predict(m, cross), num_classes)
            for c, m in models.items()}


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


def _inner_loso_scores(x, emotion, speakers, train, grid, num_classes: int, seed: int, fold_index):
    """Mean UA per C over leave-one-training-speaker-out inner folds."""
    inner = sorted(set(speakers[train].tolist()))
    if len(inner) < 2:
        raise ValueError(f"fold {fold_index}: c_select='inner' needs two training speakers")
    per_c: dict[float, list[float]] = {c: [] for c in grid}
    for s in inner:
        fit_i, held = train[speakers[train] != s], train[speakers[train] == s]
        if len(np.unique(emotion[fit_i])) < 2:
            continue
        for c, ua in _grid_ua(x[fit_i], emotion[fit_i], x[held], emotion[held], grid,
                              num_classes, seed).items():
            per_c[c].append(ua)
    return {c: float(np.nanmean(v)) if v else float("nan") for c, v in per_c.items()}


def fit_fold(x: np.ndarray, emotion: np.ndarray, speakers: np.ndarray, fold, num_classes: int,
             c_select: str, C: float | None = None, grid=C_GRID, seed: int = 0,
             refit_on_val: bool = False):
    """Chooses C without the test speaker, fits the final model; returns (model, info).

    x, emotion (-1 = unlabelled), speakers: per utterance, indexed like the fold's arrays.
    The final model is fitted on the fold's training speakers (the neural variants' training
    set); `refit_on_val` adds its validation speakers (none with train.selection='last').
    """
    train = np.array([i for i in fold.train if emotion[i] >= 0], np.int64)
    val = np.array([i for i in fold.val if emotion[i] >= 0], np.int64)
    if len(train) == 0:
        raise ValueError(f"fold {fold.index}: no emotion-labelled training utterance")
    scores: dict[float, float] = {}
    if c_select == "fixed":
        if C is None:
            raise ValueError("c_select='fixed' needs C")
        chosen = float(C)
    elif c_select == "val":
        if len(val) == 0:
            raise ValueError(f"fold {fold.index}: c_select='val' but the fold has no validation "
                             "utterances (set train.selection='val' and train.val_speakers_per_gender)")
        scores = _grid_ua(x[train], emotion[train], x[val], emotion[val], grid, num_classes, seed)
        chosen = _best(scores)
    elif c_select == "inner":
        scores = _inner_loso_scores(x, emotion, speakers, train, grid, num_classes, seed, fold.index)
        chosen = _best(scores)
    else:
        raise ValueError(f"c_select={c_select!r}: expected one of {', '.join(C_SELECT)}")
    fit_rows = np.concatenate([train, val]) if refit_on_val else train
    model = fit_svm(x[fit_rows], emotion[fit_rows], chosen, seed)
    info = {"C": chosen, "c_select": c_select, "refit_on_val": bool(refit_on_val),
            "c_grid": [float(c) for c in grid] if scores else None,
            "c_scores": {f"{c:g}": (None if np.isnan(s) else round(float(s), 6))
                         for c, s in scores.items()} or None,
            "fit_speakers": sorted(set(speakers[fit_rows].tolist())), "n_fit": int(len(fit_rows))}
    return model, info
