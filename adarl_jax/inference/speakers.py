"""Who speaks in a `predict` call: which inputs share the statistics of a speaker-normalised
model (frontend.normalize='speaker').

Such a model standardises each (band, channel) with the mean and std of the speaker's own
audio, as training did per speaker. At inference the caller says which inputs are one
speaker; a rule turns the inputs into groups, and each group's statistics come from all of
its (distinct, readable) audio:

  file    each input is its own group: a file's output never depends on the other inputs
          of the call (the default, DEFAULT_SPEAKER_FROM, for a model without kept
          training statistics)
  folder  the inputs of one folder are one speaker
  call    every input of the call is one speaker
  column  the `speaker` column of a CSV input (`path,speaker`); an input without one is its
          own group, as under `file`
  training  no input's statistics: every input standardised with the model's training
          speakers' pooled statistics (kept with the model, `train_statistics.npz`); a file's
          output never depends on anything else either. The default for a model that keeps
          them (`Predictor.default_speaker_from`): on validation speakers it beats `file` by
          0.2-0.3 UA (`adarl-jax analyze --statistics`)

A group with less than MIN_SPEAKER_S seconds of audio gets a warning in its rows: its
statistics come from little audio, so they also carry that audio's emotion.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["DEFAULT_SPEAKER_FROM", "MIN_SPEAKER_S", "SPEAKER_FROM", "TRAINING_GROUP",
           "speaker_groups", "speaker_warning"]

SPEAKER_FROM = ("file", "folder", "call", "column", "training")
TRAINING_GROUP = "(training speakers)"  # the group of --speaker-from training
# Batch-invariant: a file's probabilities are the same whatever else the call holds.
DEFAULT_SPEAKER_FROM = "file"
# Less audio than this in a group: a warning in its rows (one model input is 3 s).
MIN_SPEAKER_S = 3.0


def speaker_groups(paths: Sequence[str], rule: str = DEFAULT_SPEAKER_FROM,
                   labels: dict | None = None) -> list[str]:
    """One group name per path under `rule` (SPEAKER_FROM). `labels` {path: speaker} gives
    the `column` rule its speakers; the group names are what the rows' `speaker` column shows:
    the path (file), the folder (folder), 'call', or the speaker label (column)."""
    if rule not in SPEAKER_FROM:
        raise ValueError(f"speaker rule {rule!r}: expected one of {', '.join(SPEAKER_FROM)}")
    labels = labels or {}
    if rule == "column" and not labels:
        raise ValueError("--speaker-from column: no input is a CSV with a speaker column "
                         "(path,speaker)")
    if rule == "file":
        return [os.fspath(p) for p in paths]
    if rule == "folder":
        return [os.path.dirname(os.path.abspath(p)) for p in paths]
    if rule == "call":
        return ["call"] * len(paths)
    if rule == "training":
        return [TRAINING_GROUP] * len(paths)
    return [str(labels[p]) if labels.get(p) not in (None, "") else os.fspath(p) for p in paths]


def speaker_warning(seconds: float, minimum: float = MIN_SPEAKER_S) -> str | None:
    """The rows' warning for a group whose statistics come from `seconds` of audio."""
    if seconds >= minimum:
        return None
    return (f"speaker statistics from {seconds:.2f} s of audio, under the {minimum:g} s "
            "minimum: give more of the speaker's audio (--speaker-from folder|call|column)")
