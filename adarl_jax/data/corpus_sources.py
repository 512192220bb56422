"""More than one corpus in a run: other corpora's speakers added to every fold's training set
(`data.extra`, multi-corpus LOSO) and a corpus tested whole after training on the others
(`data.test`, cross-corpus).

A source is written `[corpus:]PATH`: `emodb:DIR`, `ravdess:DIR`, `iemocap:DIR`, `csv:MANIFEST`
or `csv:DIR` (DIR/manifest.csv); a bare PATH is a CSV manifest (or a folder holding
manifest.csv). Each source's speakers are renamed `<tag>_<speaker>` (its tag: the folder's
name), so that two corpora's speaker `03` stay two people, and its utterances carry the tag as
their `corpus`. Emotions are matched to `data.classes` by name (each reader's aliases); a label
that cannot be matched is dropped with a warning naming it.

Refused, with a message naming them: a corpus given twice, a test corpus with no class in
common with training, and the same recording (same audio bytes) in a training and the test
corpus, or in two training corpora.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections import Counter, defaultdict

from adarl_jax.data.corpora import CORPORA, load_corpus
from adarl_jax.data.utterances import CorpusError, Utterance
from adarl_jax.workdir.files import file_sha256

__all__ = ["Source", "parse_source", "extra_sources", "test_source", "read_sources",
           "check_disjoint"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Source:
    corpus: str  # emodb | ravdess | iemocap | csv
    root: str  # the corpus folder (csv: the manifest's folder)
    manifest: str  # csv only: the manifest file
    tag: str  # the name its speakers and utterances carry

    def describe(self) -> str:
        return f"{self.corpus}:{self.manifest or self.root}"


def parse_source(spec: str) -> Source:
    """`[corpus:]PATH` -> Source (see the module's docstring)."""
    corpus, sep, path = str(spec).partition(":")
    if not sep or corpus not in CORPORA:
        corpus, path = "csv", str(spec)
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(path):
        raise CorpusError(f"corpus {spec!r}: no such file or folder {path}")
    manifest = ""
    if corpus == "csv":
        manifest = path if os.path.isfile(path) else os.path.join(path, "manifest.csv")
        if not os.path.isfile(manifest):
            raise CorpusError(f"corpus {spec!r}: {manifest} not found (a CSV manifest "
                              "path,speaker,gender,emotion; or name the layout, e.g. emodb:DIR)")
        path = os.path.dirname(manifest)
    return Source(corpus, path, manifest, os.path.basename(path.rstrip(os.sep)) or "corpus")


def _sources(config, field: str) -> list[Source]:
    value = config.data.get(field, () if field == "extra" else "")
    specs = [value] if isinstance(value, str) else list(value)
    return [parse_source(s) for s in specs if s]


def extra_sources(config) -> list[Source]:
    """data.extra: corpora whose every speaker trains in every fold."""
    return _sources(config, "extra")


def test_source(config) -> Source | None:
    """data.test: the corpus tested whole (cross-corpus), or None."""
    found = _sources(config, "test")
    return found[0] if found else None


def _read_source(src: Source, classes, domain_column: str, need_domain: bool) -> list[Utterance]:
    """A source's utterances of `classes` (others dropped with a warning), speakers tagged."""
    utts = load_corpus(src.corpus, src.root, src.manifest,
                       domain_column=domain_column, need_domain=need_domain)
    wanted = set(classes)
    dropped = Counter(u.emotion for u in utts if u.emotion is not None and u.emotion not in wanted)
    if dropped:
        log.warning("%s: labels outside data.classes %s dropped: %s", src.describe(),
                    tuple(classes), ", ".join(f"{e} ({n})" for e, n in sorted(dropped.items())))
    return [dataclasses.replace(u, speaker=f"{src.tag}_{u.speaker}", corpus=src.tag)
            for u in utts if u.emotion is None or u.emotion in wanted]


def read_sources(config, main: list[Utterance], need_domain: bool) -> list[Utterance]:
    """`main` (the config's corpus, read by the caller) with the utterances of data.extra and
    data.test added; `main` unchanged when neither is set."""
    extras, test = extra_sources(config), test_source(config)
    if not extras and test is None:
        return main
    classes = tuple(config.data.classes)
    sources = extras + ([test] if test is not None else [])
    main_root = os.path.abspath(config.data.dir or os.path.dirname(config.data.manifest or "."))
    seen = {main_root: "the main corpus (--data)"}
    for src in sources:
        if src.root in seen:
            raise CorpusError(f"corpus {src.describe()} is given twice (also as {seen[src.root]})")
        seen[src.root] = src.describe()
    tags = Counter(s.tag for s in sources)
    if any(n > 1 for n in tags.values()):
        raise CorpusError(f"two corpora share a folder name {sorted(t for t, n in tags.items() if n > 1)}: "
                          "their speakers would share names; rename one folder")
    added = [u for src in extras
             for u in _read_source(src, classes, config.data.domain_column, need_domain)]
    out = [*main, *added]
    if test is not None:
        tested = _read_source(test, classes, config.data.domain_column, need_domain)
        common = {u.emotion for u in tested if u.emotion} & {u.emotion for u in out if u.emotion}
        if not common:
            raise CorpusError(f"test corpus {test.describe()} has no class in common with "
                              f"training (data.classes {classes})")
        missing = [c for c in classes if c not in {u.emotion for u in tested}]
        if missing:
            log.warning("test corpus %s has no utterance of %s: UA is over the other classes",
                        test.describe(), ", ".join(missing))
        check_disjoint(out, tested, "the test corpus")
        out += tested
    if extras:
        check_disjoint(main, added, "an extra training corpus")
    return out


@functools.lru_cache(maxsize=None)
def _digest(path: str) -> str:
    return file_sha256(path)


def check_disjoint(first: list[Utterance], second: list[Utterance], what: str) -> None:
    """Refuses the same recording (same bytes; compared when the sizes match) in both lists."""
    by_size = defaultdict(list)
    for u in first:
        by_size[os.path.getsize(u.path)].append(u)
    digests: dict[str, Utterance] = {}
    for u in second:
        twins = by_size.get(os.path.getsize(u.path))
        if not twins:
            continue
        for t in twins:
            digests.setdefault(_digest(t.path), t)
        other = digests.get(_digest(u.path))
        if other is not None:
            raise CorpusError(f"the same recording is in training and in {what}: {other.path} "
                              f"(speaker {other.speaker}) and {u.path} (speaker {u.speaker})")
