"""Each fold model's own feature space: the deep features of the utterances that model never
trained on, and the male/female class-centre distances measured inside it (paper Table 4).

A LOSO fold model has its own feature space, so features of two fold models are never put in
one embedding or one mean. Inside one fold model, the utterances it never trained on are its
test speaker (`utterances` of the fold's result record) and its validation speakers
(`val_utterances`, the selected epoch's model on them: one speaker per gender with
train.selection='val'; they chose the epoch but were never trained on). The test speaker has
one gender; the validation speakers give the model both.

Table 4 per variant: for each fold model and emotion, ||male centre - female centre|| (L2,
centre = mean deep feature over the held-out utterances of that gender and emotion); then the
mean and standard deviation over the fold models where both genders have the emotion.

Another domain than gender (`domain_column` and `domains` in the records; older records carry
`genders` only, and are gender runs): the same distance between the centres of its two values,
named from the records; a domain of more than two values has no such pair and is not measured.

Records without `val_utterances` (runs made before the trainer saved them, or
train.selection='last', where nothing of the other gender is held out) give no per-model
distance; when no fold of a variant has them, the fallback is the pooled figure of earlier
reports (male and female centres from different fold models' spaces), labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FoldSpace", "fold_space", "male_female", "center_distances", "gender_center_summary",
           "domain_of", "BASIS_PER_MODEL", "BASIS_POOLED", "GENDER"]

BASIS_PER_MODEL = "fold_models"  # inside each fold model, its validation + test speakers
BASIS_POOLED = "pooled_across_fold_models"  # the fallback: test speakers of all folds together
GENDER = "gender"  # the paper's domain, and that of every record without `domain_column`


def domain_of(record: dict) -> tuple[str, list[str]]:
    """(domain column, domain values) of a result record: `domain_column` and `domains`, or,
    for records written before those keys, gender and `genders` (F, M when absent)."""
    values = record.get("domains") or record.get("genders") or ["F", "M"]
    return str(record.get("domain_column") or GENDER), list(values)


@dataclass(frozen=True)
class FoldSpace:
    """The held-out, emotion-labelled utterances of one fold model, in that model's space."""

    fold: int
    test_speaker: str
    val_speakers: tuple[str, ...]
    features: np.ndarray  # (n, d) float64 deep features
    emotion: np.ndarray  # (n,) class index
    gender: np.ndarray  # (n,) index into the record's genders
    is_val: np.ndarray  # (n,) bool: from a validation speaker (else the test speaker)
    has_val: bool  # the record carries val_utterances


def _labelled(rows) -> list[dict]:
    return [u for u in rows if u["emotion"] >= 0 and u.get("deep_feature") is not None]


def fold_space(result: dict) -> FoldSpace | None:
    """The fold model's held-out utterances with deep features; None when it has none."""
    test, val = _labelled(result["utterances"]), _labelled(result.get("val_utterances") or [])
    rows = test + val
    if not rows:
        return None
    return FoldSpace(
        fold=int(result["fold"]), test_speaker=str(result["test_speaker"]),
        val_speakers=tuple(result.get("val_speakers") or ()),
        features=np.array([u["deep_feature"] for u in rows], np.float64),
        emotion=np.array([u["emotion"] for u in rows], int),
        gender=np.array([u["gender"] for u in rows], int),
        is_val=np.array([False] * len(test) + [True] * len(val)),
        has_val="val_utterances" in result)


def male_female(genders) -> tuple[int, int] | None:
    """(male index, female index) into `genders`; (0, 1) for two other labels; else None."""
    genders = list(genders)
    if "M" in genders and "F" in genders:
        return genders.index("M"), genders.index("F")
    return (0, 1) if len(genders) == 2 else None


def center_distances(x, emotion, gender, classes, pair) -> dict[str, float | None]:
    """Per class, ||mean x of the male rows - mean x of the female rows|| (None when a gender
    lacks the class). x, emotion, gender: rows of ONE feature space."""
    male, female = pair
    out: dict[str, float | None] = {}
    for k, c in enumerate(classes):
        m, f = x[(emotion == k) & (gender == male)], x[(emotion == k) & (gender == female)]
        out[c] = float(np.linalg.norm(m.mean(axis=0) - f.mean(axis=0))) if len(m) and len(f) else None
    return out


def _pooled(spaces: list[FoldSpace], classes, pair) -> dict[str, float | None]:
    """The fallback: test utterances of every fold in one pool (mixes fold models' spaces)."""
    test = [(s.features[~s.is_val], s.emotion[~s.is_val], s.gender[~s.is_val]) for s in spaces]
    x, y, g = (np.concatenate(parts) for parts in zip(*test))
    return center_distances(x, y, g, classes, pair)


def gender_center_summary(fold_results: list[dict]) -> dict:
    """Table 4 for one variant:
      distance  {class: mean over fold models of the per-model distance} (basis fold_models),
                or the pooled figure (basis pooled_across_fold_models), or None per class
      spread    {class: standard deviation over fold models (ddof 1)}, None with < 2 models
      n_models  {class: fold models that hold both genders of the class}
      basis     which of the two, None when no fold carries deep features
      folds     per fold model: fold, test_speaker, val_speakers, distance {class: ...}
      domain    (a domain other than gender only) {column, values, pair: the two values
                measured, first minus second; None with more than two values}
    """
    classes = list(fold_results[0]["classes"])
    column, values = domain_of(fold_results[0])
    pair = male_female(values)
    spaces = [s for s in map(fold_space, fold_results) if s is not None]
    none = {c: None for c in classes}
    out = {"distance": dict(none), "spread": dict(none), "n_models": {c: 0 for c in classes},
           "basis": None, "folds": []}
    if column != GENDER:  # gender runs keep the keys they always had
        out["domain"] = {"column": column, "values": values,
                         "pair": None if pair is None else [values[i] for i in pair]}
    if pair is None or not spaces:
        return out
    if not any(s.has_val for s in spaces):
        return {**out, "distance": _pooled(spaces, classes, pair), "basis": BASIS_POOLED}
    out["basis"] = BASIS_PER_MODEL
    for s in spaces:
        d = center_distances(s.features, s.emotion, s.gender, classes, pair)
        out["folds"].append({"fold": s.fold, "test_speaker": s.test_speaker,
                             "val_speakers": list(s.val_speakers), "distance": d})
    for c in classes:
        values = [f["distance"][c] for f in out["folds"] if f["distance"][c] is not None]
        out["n_models"][c] = len(values)
        if values:
            out["distance"][c] = float(np.mean(values))
            out["spread"][c] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return out
