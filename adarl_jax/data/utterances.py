"""The record every corpus reader returns, and the checks the readers share.

An `Utterance` carries its domain label: the value of the paper's domain pathway (Sec. 2.1).
For the built-in corpora (EmoDB, RAVDESS, IEMOCAP) that is the speaker's gender ('M' or 'F');
a CSV manifest may name another column (`data.domain_column`: age group, language, corpus,
...) with any number of values, or none at all for variants without a domain pathway (the
domain is then None).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Utterance", "CorpusError", "EMOTIONS", "normalise_emotion", "finish", "listing"]

EMOTIONS = ("anger", "happiness", "sadness", "neutral", "boredom", "disgust", "fear", "calm", "surprise")


@dataclass(frozen=True)
class Utterance:
    path: str  # absolute
    speaker: str
    domain: str | None  # the domain label: gender 'M' / 'F' by default; None = unknown
    emotion: str | None  # None: no emotion label (may still train the domain pathway)
    corpus: str

    @property
    def gender(self) -> str | None:
        """The domain label under its historical name (it is the gender for the built-in corpora)."""
        return self.domain


class CorpusError(ValueError):
    """A corpus folder or manifest that cannot be read as asked."""


# Common spellings of the canonical names (manifests, IEMOCAP codes, other corpora's words).
_EMOTION_ALIASES = {
    "angry": "anger", "ang": "anger", "anger": "anger",
    "happy": "happiness", "hap": "happiness", "happiness": "happiness", "joy": "happiness",
    "sad": "sadness", "sadness": "sadness", "neu": "neutral", "neutral": "neutral",
    "bored": "boredom", "boredom": "boredom", "calm": "calm",
    "disgusted": "disgust", "dis": "disgust", "disgust": "disgust",
    "fearful": "fear", "fea": "fear", "fear": "fear", "anxiety": "fear",
    "surprised": "surprise", "sur": "surprise", "surprise": "surprise",
}


def normalise_emotion(name: str | None) -> str | None:
    """Canonical name for common aliases; other names lowercased as given; '' -> None."""
    if name is None:
        return None
    name = name.strip().lower()
    if not name:
        return None
    return _EMOTION_ALIASES.get(name, name)


def finish(utterances: list[Utterance], folder, per_speaker: bool = True) -> list[Utterance]:
    """The checks every reader shares: something found, with `per_speaker` one domain label
    per speaker (gender is a speaker's; a language or a recording condition need not be);
    sorted by path."""
    if not utterances:
        raise CorpusError(f"no usable audio files found in {os.fspath(folder)}")
    domains: dict[str, set] = {}
    for u in utterances:
        domains.setdefault(u.speaker, set()).add(u.domain)
    mixed = {s: sorted(g, key=str) for s, g in domains.items() if len(g) > 1} if per_speaker else {}
    if mixed:
        s = sorted(mixed)[0]
        also = f" (also: {', '.join(sorted(mixed)[1:])})" if len(mixed) > 1 else ""
        raise CorpusError(f"speaker {s!r} appears with two genders {mixed[s]} in {os.fspath(folder)}{also}")
    return sorted(utterances, key=lambda u: (u.path, u.speaker))


def listing(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
