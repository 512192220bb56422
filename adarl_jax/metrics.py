"""WA, UA and confusion matrices (Sec. 3.1): pure numpy on label arrays.

WA = overall accuracy. UA = mean recall over the classes present in `y_true` (a LOSO test
speaker may lack a class; its UA is over the classes it has).
"""

from __future__ import annotations

import numpy as np


def confusion(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    m = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(m, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return m


def weighted_accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def per_class_recall(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Recall per class; NaN for a class absent from y_true."""
    m = confusion(y_true, y_pred, num_classes)
    support = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(m) / np.maximum(support, 1), np.nan)


def unweighted_accuracy(y_true, y_pred, num_classes: int) -> float:
    recall = per_class_recall(y_true, y_pred, num_classes)
    return float(np.nanmean(recall)) if np.any(~np.isnan(recall)) else float("nan")


def row_normalised(m: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (a fold's confusion in recall form); absent rows are NaN."""
    m = np.asarray(m, float)
    s = m.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, m / np.maximum(s, 1e-12), np.nan)


def score_utterances(rows: list[dict], num_classes: int) -> dict:
    """WA and UA of utterance rows (argmax of 'probs' against 'emotion'; rows with emotion < 0
    are unlabelled and skipped), and the gender (domain) accuracy of rows that carry
'domain_probs' and a known domain (gender >= 0; -1: read without the domain column)."""
    labelled = [r for r in rows if r["emotion"] >= 0]
    y = np.array([r["emotion"] for r in labelled], int)
    p = np.array([int(np.argmax(r["probs"])) for r in labelled], int)
    out = {"n": len(labelled), "wa": weighted_accuracy(y, p), "ua": unweighted_accuracy(y, p, num_classes)}
    dom = [r for r in rows if "domain_probs" in r and r["gender"] >= 0]
    if dom:
        out["gender_accuracy"] = float(np.mean([int(np.argmax(r["domain_probs"])) == r["gender"] for r in dom]))
    return out


def utterance_labels(probs: np.ndarray, seg_utt: np.ndarray, utts) -> list[int]:
    """Each utterance's label (Sec. 3.1): the argmax of its segments' mean probabilities.

    `probs` (n, K) per segment, `seg_utt` (n,) each segment's utterance; -1 for an utterance of
    `utts` without segments."""
    return [int(np.argmax(probs[seg_utt == u].mean(0))) if (seg_utt == u).any() else -1
            for u in utts]
