"""Inputs and outputs of batch inference: audio paths from files, folders and lists of paths;
one input's segments read with its error kept (a batch survives an odd file); predictions
as CSV or JSON rows (with error and warning columns); embeddings as .npy (and .npz per segment).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from adarl_jax.data.audio import AudioError
from adarl_jax.workdir.files import save_npy_atomic, write_bytes_atomic, write_text_atomic

__all__ = ["AUDIO_EXTENSIONS", "InputJob", "Inputs", "LIST_EXTENSIONS", "expand_inputs",
           "file_info", "read_inputs", "read_segments", "write_embeddings", "write_predictions"]

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc",
                    ".au", ".snd", ".w64", ".rf64", ".caf")
LIST_EXTENSIONS = (".txt", ".lst", ".list")


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclasses.dataclass
class Inputs:
    """What a call's inputs expand to: audio paths in order, and the speaker a CSV input gives
    a path ({path: speaker})."""

    paths: list
    speakers: dict


def _csv_inputs(path: str) -> list[tuple[str, str | None]]:
    """(audio path, speaker or None) per row of a `path[,speaker]` CSV with a header."""
    base = os.path.dirname(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ValueError(f"{path}: a CSV input needs a header with a 'path' column "
                             f"(and optionally 'speaker'), got {reader.fieldnames}")
        rows = []
        for line, row in enumerate(reader, start=2):
            p = (row.get("path") or "").strip()
            if not p:
                raise ValueError(f"{path}, line {line}: empty path")
            speaker = (row.get("speaker") or "").strip() or None
            rows.append((p if os.path.isabs(p) else os.path.join(base, p), speaker))
    return rows


def read_inputs(paths: Iterable) -> Inputs:
    """Audio paths from files, folders (recursive, AUDIO_EXTENSIONS), lists of paths and CSV
    inputs.

    A list is a text file (.txt, .lst, .list) with one path per line (lines starting with '#'
    are comments); a CSV input (.csv) has a header with a `path` column and optionally a
    `speaker` column (who speaks: `--speaker-from column`). Relative paths in both are
    relative to their file's folder. Anything else is taken as an audio file, so a missing or
    unreadable one is reported with the predictions. Order is kept, and so is a path given
    more than once (`Predictor.predict_files` predicts it once and warns in each of its rows).
    A path given two different speakers is an error.
    """
    out: list[str] = []
    speakers: dict[str, str] = {}
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = sorted(os.path.join(root, f) for root, _, files in os.walk(p) for f in files
                           if f.lower().endswith(AUDIO_EXTENSIONS))
            if not found:
                log.warning("%s: no audio files (%s) in this folder", p, ", ".join(AUDIO_EXTENSIONS))
            out += found
        elif p.lower().endswith(LIST_EXTENSIONS) and os.path.isfile(p):
            base = os.path.dirname(p)
            with open(p) as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        out.append(line if os.path.isabs(line) else os.path.join(base, line))
        elif p.lower().endswith(".csv") and os.path.isfile(p):
            for audio, speaker in _csv_inputs(p):
                out.append(audio)
                key = os.path.abspath(audio)
                if speaker is not None:
                    if speakers.get(key, speaker) != speaker:
                        raise ValueError(f"{p}: {audio} is given two speakers, "
                                         f"{speakers[key]!r} and {speaker!r}")
                    speakers[key] = speaker
        else:
            out.append(p)
    return Inputs(out, {p: speakers[os.path.abspath(p)] for p in out
                        if os.path.abspath(p) in speakers})


def expand_inputs(paths: Iterable) -> list[str]:
    """The audio paths of `read_inputs`, in order."""
    return read_inputs(paths).paths


# ---------------------------------------------------------------------------------------------
# Reading one input


@dataclasses.dataclass
class InputJob:
    """One input's progress: its segments' probabilities arrive batch by batch."""

    path: str | None
    starts: list = dataclasses.field(default_factory=list)
    lengths: list = dataclasses.field(default_factory=list)
    probs: dict = dataclasses.field(default_factory=dict)  # segment index -> (K,) probabilities
    feats: dict = dataclasses.field(default_factory=dict)  # segment index -> (D,) deep feature
    duration_s: float | None = None
    error: str | None = None
    warnings: list = dataclasses.field(default_factory=list)  # audio.py's suspect-file lines
    read_done: bool = False

    @property
    def done(self) -> bool:
        return self.read_done and len(self.probs) == len(self.starts)


def read_segments(job: InputJob, open_segments: Callable[[list], Iterator]) -> Iterator:
    """The source's segments; a read error ends them and is kept in job.error (errors of the
    model, raised in the consumer, are not caught here). The source appends its warnings to
    the list it is given."""
    try:
        yield from open_segments(job.warnings)
    except AudioError as e:
        job.error = e.reason
    except Exception as e:  # a batch of thousands must survive one odd file
        job.error = f"{type(e).__name__}: {e}"


def file_info(path: str) -> tuple[float | None, int | None]:
    """(duration in seconds, sample rate) from the file's header; (None, None) if unreadable."""
    try:
        import soundfile as sf

        info = sf.info(path)
        return (info.frames / info.samplerate, int(info.samplerate)) if info.samplerate else (None, None)
    except Exception:
        return None, None


# ---------------------------------------------------------------------------------------------
# Output


def _row(rec: dict, classes: Sequence[str], timeline: bool) -> dict:
    row = {"path": rec.get("path")}
    if timeline:
        row["start_s"] = None
    row["emotion"] = rec["emotion"]
    for c in classes:
        row[f"p_{c}"] = None if rec["probs"] is None else rec["probs"][c]
    row.update(duration_s=rec["duration_s"], segments=rec["segments"], speaker=rec.get("speaker"),
               speaker_s=rec.get("speaker_s"), error=rec["error"], warning=rec.get("warning"))
    return row


def _segment_row(path, seg: dict, classes: Sequence[str]) -> dict:
    row = {"path": path, "start_s": seg["start_s"], "emotion": seg["emotion"]}
    row.update({f"p_{c}": seg["probs"][c] for c in classes})
    row.update(duration_s=seg["duration_s"], segments=1, speaker=None, speaker_s=None, error=None,
               warning=None)
    return row


def write_predictions(records: list[dict], out, classes: Sequence[str], timeline: bool = False) -> None:
    """CSV (by extension .csv, or '-': to stdout) or JSON (.json) of predict_files' records,
    written atomically.

    CSV columns: path, [start_s,] emotion, p_<class>..., duration_s, segments, speaker (the
    group whose statistics standardised the input; empty for a model without speaker
    statistics), speaker_s (the seconds of audio they came from), error (empty when fine),
    warning (empty unless something is suspect: silent, truncated, short, band-limited,
    repeated, too little speaker audio; '; ' between several); with timeline each file's row
    (start_s empty) is followed by one row per segment. JSON: a list of objects with the same
    fields; the segments go in 'timeline'.
    """
    out = os.fspath(out)
    ext = ".csv" if out == "-" else os.path.splitext(out)[1].lower()
    if ext == ".json":
        rows = []
        for rec in records:
            row = _row(rec, classes, False)
            if timeline:
                row["timeline"] = [{k: v for k, v in _segment_row(rec["path"], s, classes).items()
                                    if k not in ("path", "segments", "speaker", "speaker_s", "error", "warning")}
                                   for s in rec.get("timeline", [])]
            rows.append(row)
        write_text_atomic(out, json.dumps(rows, indent=1) + "\n")
        return
    if ext != ".csv":
        raise ValueError(f"--out {out}: expected a .csv or .json file name, or - (CSV to stdout)")
    fields = list(_row({"path": "", "emotion": None, "probs": None, "duration_s": None,
                        "segments": 0, "error": None}, classes, timeline))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    blank = lambda r: {k: ("" if v is None else v) for k, v in r.items()}
    for rec in records:
        writer.writerow(blank(_row(rec, classes, timeline)))
        if timeline:
            for seg in rec.get("timeline", []):
                writer.writerow(blank(_segment_row(rec["path"], seg, classes)))
    if out == "-":
        sys.stdout.write(buf.getvalue())
        sys.stdout.flush()
    else:
        write_text_atomic(out, buf.getvalue())


def embedding_arrays(records: list[dict], dim: int) -> dict:
    """{'embeddings': (n_inputs, dim) float32, NaN rows for failed inputs} and, when the
    records hold per-segment embeddings, {'segments': (n_segments, dim) float32,
    'utterance_index': (n_segments,) int64 (row in 'embeddings' and in the predictions file),
    'start_s': (n_segments,) float32}."""
    utt = np.full((len(records), dim), np.nan, np.float32)
    segs, index, starts = [], [], []
    for i, rec in enumerate(records):
        if rec.get("embedding") is not None:
            utt[i] = rec["embedding"]
        if rec.get("segment_embeddings") is not None:
            segs.append(rec["segment_embeddings"])
            index += [i] * len(rec["segment_embeddings"])
            starts += [s["start_s"] for s in rec["timeline"]]
    out = {"embeddings": utt}
    if any("segment_embeddings" in rec for rec in records):
        out.update(segments=np.concatenate(segs).astype(np.float32) if segs
                   else np.zeros((0, dim), np.float32),
                   utterance_index=np.asarray(index, np.int64),
                   start_s=np.asarray(starts, np.float32))
    return out


def segments_path(out) -> str:
    """Where the per-segment embeddings of `out` (x.npy) go: x.segments.npz."""
    return os.path.splitext(os.fspath(out))[0] + ".segments.npz"


def write_embeddings(records: list[dict], out, dim: int) -> list[str]:
    """`embedding_arrays` written atomically: out (.npy, one row per record, in order) and,
    with per-segment embeddings, `segments_path(out)` (.npz). Returns the paths written."""
    out = os.fspath(out)
    if os.path.splitext(out)[1].lower() != ".npy":
        raise ValueError(f"--embeddings {out}: expected a .npy file name")
    arrays = embedding_arrays(records, dim)
    save_npy_atomic(out, arrays.pop("embeddings"))
    if not arrays:
        return [out]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(segments_path(out), buf.getvalue())
    return [out, segments_path(out)]
