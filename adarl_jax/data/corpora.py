"""Corpus readers: IEMOCAP, Berlin EmoDB, RAVDESS and CSV manifests.

Every reader returns the same thing, a sorted list of `Utterance`s with absolute paths, so the
rest of the pipeline never knows which corpus it is looking at. Speaker and gender come from
each corpus's own naming conventions; gender is the domain label of the paper's domain pathway
(Sec. 2.1). A CSV manifest (adarl_jax.data.manifest) may name another domain column, or none.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
from collections import Counter
from pathlib import Path

from adarl_jax.data.manifest import GENDER_COLUMN, check_domain_values, read_manifest
from adarl_jax.data.utterances import EMOTIONS, CorpusError, Utterance, normalise_emotion
from adarl_jax.data.utterances import finish as _finish
from adarl_jax.data.utterances import listing as _listing

__all__ = ["Utterance", "CorpusError", "EMOTIONS", "CORPORA", "read_emodb", "read_ravdess",
           "read_iemocap", "read_manifest", "load_corpus", "select_classes", "stratified_subset",
           "normalise_emotion", "check_domain_values"]

logger = logging.getLogger(__name__)

CORPORA = ("emodb", "ravdess", "iemocap", "csv")


def _require_folder(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"corpus folder {os.fspath(root)} does not exist or is not a folder")
    return Path(os.path.abspath(root))


@functools.lru_cache(maxsize=1)
def audio_suffixes() -> frozenset[str]:
    """File name suffixes of the formats libsndfile reads here (.wav, .flac, .ogg, .aiff, ...;
    headerless .raw is left out)."""
    import soundfile

    names = {"." + f.lower() for f in soundfile.available_formats()} - {".raw"}
    return frozenset(names | {".aif", ".oga"})


def _is_audio(p: Path) -> bool:
    return p.suffix.lower() in audio_suffixes() and not p.name.startswith("._") and p.is_file()


# ---------------------------------------------------------------------------------------------
# Berlin EmoDB: <speaker 2 digits><text code 3><emotion letter><version>.wav, e.g. 03a01Fa.wav

EMODB_EMOTIONS = {
    "W": "anger", "L": "boredom", "E": "disgust", "A": "fear",
    "F": "happiness", "T": "sadness", "N": "neutral",
}
EMODB_GENDERS = {
    "03": "M", "10": "M", "11": "M", "12": "M", "15": "M",
    "08": "F", "09": "F", "13": "F", "14": "F", "16": "F",
}
_EMODB_NAME = re.compile(r"^(\d{2})([a-z]\d{2})([A-Z])([a-z]+)$")


def read_emodb(root) -> list[Utterance]:
    """EmoDB from its file names (files in root/wav, or root itself)."""
    root = _require_folder(root)
    folder = root / "wav" if (root / "wav").is_dir() else root
    utterances, odd = [], []
    for p in sorted(folder.iterdir()):
        if not _is_audio(p):
            continue
        m = _EMODB_NAME.match(p.stem)
        if not m or m.group(3) not in EMODB_EMOTIONS:
            odd.append(p.name)
            continue
        speaker, letter = m.group(1), m.group(3)
        if speaker not in EMODB_GENDERS:
            raise CorpusError(f"EmoDB file {p}: unknown speaker {speaker!r} "
                              f"(known: {', '.join(sorted(EMODB_GENDERS))})")
        utterances.append(Utterance(os.fspath(p), speaker, EMODB_GENDERS[speaker], EMODB_EMOTIONS[letter], "emodb"))
    if odd:
        logger.warning("EmoDB: %d file(s) in %s do not follow the EmoDB naming and were skipped: %s",
                       len(odd), folder, _listing(odd))
    utterances = _finish(utterances, folder)
    if (root / "manifest.csv").is_file():
        _cross_check(utterances, root / "manifest.csv", root)
    return utterances


def _cross_check(utterances: list[Utterance], manifest: Path, root: Path) -> None:
    """The file names are the truth; a manifest that disagrees is worth a warning."""
    try:
        listed = {u.path: u for u in read_manifest(manifest, root, corpus="emodb")}
    except CorpusError as e:
        logger.warning("EmoDB: manifest %s not used for cross-checking: %s", manifest, e)
        return
    diff = [
        os.path.basename(u.path)
        for u in utterances
        if u.path in listed and (listed[u.path].speaker, listed[u.path].gender, listed[u.path].emotion)
        != (u.speaker, u.gender, u.emotion)
    ]
    if diff:
        logger.warning("EmoDB: %s disagrees with the file names for %d file(s) (file names win): %s",
                       manifest, len(diff), _listing(diff))


# ---------------------------------------------------------------------------------------------
# RAVDESS: Actor_XX/MM-VV-EE-II-SS-RR-AA.wav (modality, vocal channel, emotion, intensity,
# statement, repetition, actor); vocal channel 01 = speech, 02 = song; odd actors are male.

RAVDESS_EMOTIONS = {
    "01": "neutral", "02": "calm", "03": "happiness", "04": "sadness",
    "05": "anger", "06": "fear", "07": "disgust", "08": "surprise",
}
_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def read_ravdess(root) -> list[Utterance]:
    """RAVDESS speech (vocal channel 01) from its file names, anywhere under root."""
    root = _require_folder(root)
    utterances, odd = [], []
    for p in sorted(root.rglob("*")):
        if not _is_audio(p):
            continue
        m = _RAVDESS_NAME.match(p.stem)
        if not m or m.group(3) not in RAVDESS_EMOTIONS:
            odd.append(p.name)
            continue
        if m.group(2) != "01":  # song
            continue
        actor = int(m.group(7))
        utterances.append(
            Utterance(os.fspath(p), f"Actor_{actor:02d}", "M" if actor % 2 else "F",
                      RAVDESS_EMOTIONS[m.group(3)], "ravdess")
        )
    if odd:
        logger.warning("RAVDESS: %d file(s) under %s do not follow the RAVDESS naming and were skipped: %s",
                       len(odd), root, _listing(odd))
    return _finish(utterances, root)


# ---------------------------------------------------------------------------------------------
# IEMOCAP release layout: SessionN/dialog/EmoEvaluation/<dialog>.txt holds lines
#   [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]
# and the audio is SessionN/sentences/wav/<dialog>/<utterance>.wav.

IEMOCAP_EMOTIONS = {"neu": "neutral", "hap": "happiness", "sad": "sadness", "ang": "anger"}
_IEMOCAP_LINE = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(\S+)\s+(\S+)\s+\[")
_IEMOCAP_UTT = re.compile(r"^Ses(\d{2})[MF]_(.+)_([MF])(\d{3})$")


def read_iemocap(root) -> list[Utterance]:
    """IEMOCAP improvised dialogs, classes neutral/happiness/sadness/anger (the paper's setup)."""
    root = _require_folder(root)
    sessions = sorted(p for p in root.glob("Session*") if p.is_dir())
    if not sessions:
        raise CorpusError(f"no SessionN folders in IEMOCAP folder {root}")
    utterances, missing = [], []
    for session in sessions:
        for txt in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            if txt.name.startswith("._") or "impro" not in txt.stem:
                continue
            for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
                m = _IEMOCAP_LINE.match(line.strip())
                if not m:
                    continue
                utt, label = m.group(1), m.group(2)
                emotion = IEMOCAP_EMOTIONS.get(label)
                u = _IEMOCAP_UTT.match(utt)
                if emotion is None or u is None or "impro" not in u.group(2):
                    continue
                dialog = utt.rsplit("_", 1)[0]
                wav = session / "sentences" / "wav" / dialog / f"{utt}.wav"
                if not wav.is_file():
                    missing.append(os.fspath(wav))
                    continue
                gender = u.group(3)
                utterances.append(
                    Utterance(os.fspath(wav), f"Ses{int(u.group(1)):02d}{gender}", gender, emotion, "iemocap")
                )
    if missing:
        logger.warning("IEMOCAP: %d labelled utterance(s) have no wav file and were skipped: %s",
                       len(missing), _listing(missing))
    return _finish(utterances, root)


# ---------------------------------------------------------------------------------------------
# CSV manifests: adarl_jax.data.manifest (path, speaker, emotion and a domain column).


def manifest_path(root, manifest: str = "") -> Path:
    """The manifest corpus 'csv' reads: `manifest`, or root/manifest.csv."""
    if manifest:
        return Path(manifest)
    if not root:
        raise CorpusError("corpus 'csv' needs a manifest path or a folder holding manifest.csv")
    return Path(root) / "manifest.csv"


def load_corpus(name: str, root, manifest: str = "", domain_column: str = GENDER_COLUMN,
                need_domain: bool = True) -> list[Utterance]:
    """The utterances of corpus `name` ('emodb' | 'ravdess' | 'iemocap' | 'csv') in `root`.

    For 'csv' the manifest is `manifest` or root/manifest.csv; its paths are relative to
    `root` when given, else to the manifest's folder; its domain label is the column
    `domain_column` (see `manifest.read_manifest` for `need_domain`). The built-in corpora's
    domain is the speaker's gender.
    """
    if name != "csv" and domain_column != GENDER_COLUMN:
        raise CorpusError(f"corpus {name!r} has gender as its domain; data.domain_column="
                          f"{domain_column!r} applies to corpus 'csv' only")
    if name == "emodb":
        return read_emodb(root)
    if name == "ravdess":
        return read_ravdess(root)
    if name == "iemocap":
        return read_iemocap(root)
    if name == "csv":
        path = manifest_path(root, manifest)
        return read_manifest(path, root or None, domain_column=domain_column, need_domain=need_domain)
    raise CorpusError(f"unknown corpus {name!r}; valid: {', '.join(CORPORA)}")


def select_classes(utterances: list[Utterance], classes, keep_others: bool = False) -> list[Utterance]:
    """Utterances whose emotion is one of `classes`, plus the unlabelled ones (emotion None).

    keep_others: utterances of other emotions are kept too, with their emotion removed
    (domain-only samples: their gender still trains the domain pathway).
    """
    classes = tuple(classes)
    present = Counter(u.emotion for u in utterances if u.emotion is not None)
    absent = [c for c in classes if c not in present]
    if absent:
        listed = ", ".join(f"{c} ({n})" for c, n in sorted(present.items())) or "none"
        raise CorpusError(f"class(es) {', '.join(absent)} never occur; classes present: {listed}")
    wanted = set(classes)
    others = {e: n for e, n in sorted(present.items()) if e not in wanted}
    if others:
        logger.info("emotions outside data.classes %s %s: %s", classes, "kept as domain-only"
                    if keep_others else "left out", ", ".join(f"{e} ({n})" for e, n in others.items()))
    if keep_others:
        return [u if u.emotion is None or u.emotion in wanted else dataclasses.replace(u, emotion=None)
                for u in utterances]
    return [u for u in utterances if u.emotion is None or u.emotion in wanted]


def stratified_subset(utterances: list[Utterance], n: int) -> list[Utterance]:
    """At most `n` utterances spread evenly over speakers and, within a speaker, over emotions.

    Deterministic (no randomness): for `data.max_utterances` smoke runs. n <= 0 keeps all.
    """
    if n <= 0 or n >= len(utterances):
        return list(utterances)
    by_speaker: dict[str, dict[str | None, list[int]]] = {}
    for i, u in enumerate(utterances):
        by_speaker.setdefault(u.speaker, {}).setdefault(u.emotion, []).append(i)
    queues = []
    for speaker in sorted(by_speaker):
        groups = [by_speaker[speaker][e] for e in sorted(by_speaker[speaker], key=lambda e: (e is None, e or ""))]
        order = [g[k] for k in range(max(map(len, groups))) for g in groups if k < len(g)]
        queues.append(order)
    chosen: list[int] = []
    k = 0
    while len(chosen) < n:
        for q in queues:
            if k < len(q) and len(chosen) < n:
                chosen.append(q[k])
        k += 1
    return [utterances[i] for i in sorted(chosen)]
