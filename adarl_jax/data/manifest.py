"""CSV manifests: one row per audio file, columns path, speaker, emotion and a domain column.

The domain column is `gender` by default (M, F, male, female; one value per speaker) and may be
any other column (`data.domain_column`: age_group, language, corpus, ...) holding any number of
values, written as they should be matched against `data.genders` (the domain values). Other
columns are ignored. A variant without a domain pathway reads manifests that lack the column
(`need_domain=False`): the domain of every row is then None (unknown).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections import Counter
from pathlib import Path

from adarl_jax.data.utterances import EMOTIONS, CorpusError, Utterance, finish, listing, normalise_emotion

__all__ = ["read_manifest", "check_domain_values", "BASE_COLUMNS", "GENDER_COLUMN"]

logger = logging.getLogger(__name__)

BASE_COLUMNS = ("path", "speaker", "emotion")
GENDER_COLUMN = "gender"
_GENDERS = {"m": "M", "male": "M", "f": "F", "female": "F"}


def read_manifest(csv_path, root=None, corpus: str = "csv", domain_column: str = GENDER_COLUMN,
                  need_domain: bool = True) -> list[Utterance]:
    """Utterances listed in a CSV manifest; paths are relative to `root` (default: its folder).

    A path that leaves `root` is refused. Rows whose file does not exist are skipped with a
    warning listing them; if none exists, CorpusError. Emotion labels that are not a known
    name (EMOTIONS or a common alias) are kept as written, lowercased, and listed with their
    line numbers in a warning: unless `data.classes` names them, they will not be used.
    A manifest with a header and no rows is a CorpusError of its own, and so is one that is not
    UTF-8 (naming the line), and one where two spellings of a speaker id collide (see
    `speaker_key`: `3` and `03` would be one person in training and in test). The domain column
    (`domain_column`) must be there with a value on every row (rows without one are listed
    by line) unless `need_domain` is False: then a missing column or an empty cell is an
    unknown domain (None).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise CorpusError(f"manifest {os.fspath(csv_path)} does not exist")
    root = Path(os.path.abspath(root if root else csv_path.parent))
    if not root.is_dir():
        raise CorpusError(f"manifest root folder {root} does not exist")
    column = domain_column.strip().lower()
    utterances, missing, seen, unknown, empty, spellings = [], [], {}, [], [], {}
    with io.StringIO(_manifest_text(csv_path), newline="") as fh:
        reader = csv.DictReader(fh)
        reader.fieldnames = _manifest_header(reader.fieldnames, csv_path, column, need_domain)
        for row in reader:
            where = f"manifest {csv_path} line {reader.line_num}"
            path, speaker = _path_and_speaker(row, root, where)
            _check_spelling(spellings, speaker, reader.line_num, where)
            domain = _domain(row, column, where)
            if domain is None and need_domain:
                empty.append(reader.line_num)
            if path in seen:
                raise CorpusError(f"{where}: path {row['path'].strip()!r} is listed twice (first on line {seen[path]})")
            seen[path] = reader.line_num
            emotion = normalise_emotion(row.get("emotion"))
            if emotion is not None and emotion not in EMOTIONS:
                unknown.append((reader.line_num, (row.get("emotion") or "").strip()))
            if not os.path.isfile(path):
                missing.append(path)
                continue
            utterances.append(Utterance(path, speaker, domain, emotion, corpus))
    if not seen:
        raise CorpusError(f"manifest {csv_path} has a header but no rows: list one audio file "
                          f"per line ({','.join(_columns(column))})")
    if empty:
        raise CorpusError(f"manifest {csv_path}: {len(empty)} row(s) have no value in the domain "
                          f"column {column!r}: {listing([f'line {i}' for i in empty])}")
    _warn_unknown_labels(csv_path, unknown)
    if missing and not utterances:
        raise CorpusError(f"manifest {csv_path}: none of its {len(missing)} listed file(s) exist "
                          f"under {root}: {listing(missing, 3)}")
    if missing:
        logger.warning("manifest %s: %d listed file(s) do not exist and were skipped: %s",
                       csv_path, len(missing), listing(missing))
    return finish(utterances, root, per_speaker=column == GENDER_COLUMN)


def _manifest_text(csv_path: Path) -> str:
    """The manifest's text (UTF-8, a byte-order mark allowed); another encoding is refused
    naming the first line that does not decode."""
    data = csv_path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise CorpusError(f"manifest {csv_path} line {line}: not UTF-8 (byte 0x{data[e.start]:02x}; "
                          f"{e.reason}); save the manifest as UTF-8 (it may be latin-1 or "
                          "cp1252)") from None


def speaker_key(speaker: str) -> str:
    """What two spellings of one speaker id share: case, runs of spaces and the leading zeros
    of every number ignored ('03' and '3', 'Spk 07' and 'spk  7' are one key)."""
    key = " ".join(speaker.split()).casefold()
    return re.sub(r"\d+", lambda m: str(int(m.group())), key)


def _check_spelling(spellings: dict, speaker: str, line: int, where: str) -> None:
    """Refuses a speaker id spelt two ways (`spellings`: {key: (first spelling, its line)})."""
    first, first_line = spellings.setdefault(speaker_key(speaker), (speaker, line))
    if first != speaker:
        raise CorpusError(f"{where}: speaker {speaker!r} and speaker {first!r} (line "
                          f"{first_line}) differ only in case, spaces or leading zeros: one "
                          "person would be two speakers (in training and in test); spell each "
                          "speaker id one way")


def _columns(column: str) -> tuple[str, ...]:
    return ("path", "speaker", column, "emotion")


def _path_and_speaker(row: dict, root: Path, where: str) -> tuple[str, str]:
    raw_path = (row.get("path") or "").strip()
    if not raw_path:
        raise CorpusError(f"{where}: empty path")
    path = os.path.normpath(os.path.join(root, raw_path))  # lexical: '..' cannot hide
    if os.path.commonpath([path, os.fspath(root)]) != os.fspath(root):
        raise CorpusError(f"{where}: path {raw_path!r} is outside the corpus folder {root}")
    speaker = (row.get("speaker") or "").strip()
    if not speaker:
        raise CorpusError(f"{where}: empty speaker")
    return path, speaker


def _domain(row: dict, column: str, where: str) -> str | None:
    """The row's domain label; None when the cell is empty or the column absent."""
    raw = (row.get(column) or "").strip()
    if not raw:
        return None
    if column != GENDER_COLUMN:
        return raw
    gender = _GENDERS.get(raw.lower())
    if gender is None:
        raise CorpusError(f"{where}: gender {raw!r} is not one of M, F, male, female")
    return gender


def _manifest_header(fieldnames, csv_path, column: str, need_domain: bool) -> list[str]:
    wanted = _columns(column)
    if fieldnames is None:
        raise CorpusError(f"manifest {csv_path} is empty: expected a header line "
                          f"{','.join(wanted)} and one row per audio file")
    header = [(h or "").strip().lower() for h in fieldnames]
    absent = [c for c in wanted if c not in header and (need_domain or c != column)]
    if absent:
        what = (f" (the domain column, data.domain_column={column!r})" if column in absent else "")
        raise CorpusError(f"manifest {csv_path} lacks column(s) {', '.join(absent)}{what} (has: "
                          f"{', '.join(h for h in header if h) or 'nothing'}; needs: {', '.join(wanted)})")
    return header


def _warn_unknown_labels(csv_path, unknown: list[tuple[int, str]]) -> None:
    if not unknown:
        return
    counts = Counter(label.lower() for _, label in unknown)
    logger.warning("manifest %s: %d row(s) have an unknown emotion label %s (known: %s and common "
                   "aliases): %s; only used if data.classes names the label", csv_path,
                   len(unknown), ", ".join(f"{k!r} ({n})" for k, n in sorted(counts.items())),
                   ", ".join(EMOTIONS), listing([f"line {i} {lab!r}" for i, lab in unknown]))


def check_domain_values(utterances: list[Utterance], manifest, column: str, variant: str) -> None:
    """A variant with a domain pathway classifies the domain: it needs two values or more.
    (A corpus of one speaker is left to the LOSO check, which names the more basic problem.)"""
    if len({u.speaker for u in utterances}) < 2:
        return
    values = sorted({u.domain for u in utterances if u.domain is not None})
    if len(values) < 2:
        found = f"one value only ({values[0]!r})" if values else "no value"
        raise CorpusError(
            f"manifest {manifest}: the domain column {column!r} has {found}; model.variant="
            f"{variant!r} trains a domain classifier, which needs two values or more (choose "
            f"another data.domain_column, or model.variant='backbone', which uses no domain)")
