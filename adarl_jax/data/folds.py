"""Leave-one-speaker-out folds (Sec. 3.1: "by-speaker folds ... evaluated in turn with a new
speaker"), with optional validation speakers drawn from the training speakers so that model
selection never looks at the test speaker.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from adarl_jax.data.corpus_sources import extra_sources, test_source

__all__ = ["Fold", "loso_folds", "every_speaker_fold", "parse_folds", "missing_classes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    index: int
    test_speaker: str
    train_speakers: tuple[str, ...]
    val_speakers: tuple[str, ...]
    train: np.ndarray  # utterance indices, labelled or not (unlabelled ones train the domain pathway)
    val: np.ndarray  # labelled utterances of the validation speakers
    test: np.ndarray  # labelled utterances of the test speaker


def every_speaker_fold(utterances, index: int = 0) -> Fold:
    """Every utterance trains; nothing validates or tests (a final model's fold)."""
    speakers = tuple(sorted({u.speaker for u in utterances}))
    empty = np.zeros(0, np.int64)
    return Fold(index=index, test_speaker="", train_speakers=speakers, val_speakers=(),
                train=np.arange(len(utterances)), val=empty, test=empty)


def loso_folds(utterances, val_speakers_per_gender: int = 0, seed: int = 0,
               domain_name: str = "gender", train_only=frozenset()) -> list[Fold]:
    """One fold per speaker (sorted order) that has at least one emotion-labelled utterance.

    Training speakers are all other speakers minus the validation speakers, drawn from the
    other speakers by a numpy Generator seeded with (seed, fold index). With k =
    `val_speakers_per_gender` (per domain value: the name is historical):
    - when every speaker has one known domain value (gender always does), k speakers of each
      value (values in sorted order) that a speaker who may be validated on holds, each value
      keeping one speaker for training;
    - otherwise (the domain varies within a speaker, e.g. several languages, or is unknown),
      k x (number of known domain values, at least 1) speakers drawn at random from all the
      other labelled speakers, keeping one for training: as many as a per-value draw.
    A speaker with no emotion labels, or one in `train_only` (another corpus's, data.extra),
    is never tested or validated on, only trained on.
    Utterances of the test and validation speakers that lack an emotion label are used
    nowhere. Fewer than 2 speakers, or none with an emotion label, is a ValueError naming the
    corpus folder. `domain_name` (data.domain_column) names the domain in error messages.
    """
    k = int(val_speakers_per_gender)
    if k < 0:
        raise ValueError(f"val_speakers_per_gender={k} must be >= 0")
    speakers, labelled, domain, n_values = _speakers(utterances)
    _check_speakers(utterances, speakers, labelled)
    labelled = {s: v and s not in train_only for s, v in labelled.items()}
    speaker_of = np.array([u.speaker for u in utterances], dtype=object)
    has_label = np.array([u.emotion is not None for u in utterances], dtype=bool)

    folds = []
    for test_speaker in (s for s in speakers if labelled[s]):
        index = len(folds)
        others = [s for s in speakers if s != test_speaker]
        val_set = set(_validation_speakers(others, labelled, domain, n_values, k, seed, index,
                                           test_speaker, domain_name) if k else ())
        train_speakers = tuple(s for s in others if s not in val_set)
        in_train = np.isin(speaker_of, np.array(train_speakers, dtype=object))
        in_val = np.isin(speaker_of, np.array(sorted(val_set), dtype=object)) & has_label
        in_test = (speaker_of == test_speaker) & has_label
        folds.append(
            Fold(
                index=index,
                test_speaker=test_speaker,
                train_speakers=train_speakers,
                val_speakers=tuple(sorted(val_set)),
                train=np.flatnonzero(in_train),
                val=np.flatnonzero(in_val),
                test=np.flatnonzero(in_test),
            )
        )
    return folds


def _speakers(utterances):
    """(sorted speakers, {speaker: has an emotion label}, {speaker: its one domain value} or
    None when some speaker has several or an unknown one, the number of known domain values)."""
    domains: dict[str, set] = {}
    labelled: dict[str, bool] = {}
    for u in utterances:
        domains.setdefault(u.speaker, set()).add(u.domain)
        labelled[u.speaker] = labelled.get(u.speaker, False) or u.emotion is not None
    per_value = all(len(d) == 1 and None not in d for d in domains.values())
    domain = {s: next(iter(d)) for s, d in domains.items()} if per_value else None
    n_values = len({v for d in domains.values() for v in d if v is not None})
    return sorted(domains), labelled, domain, n_values


def _validation_speakers(others, labelled, domain, n_values, k, seed, index, test_speaker,
                         domain_name) -> list[str]:
    """k per domain value when `domain` ({speaker: value}) is given, else k x n_values at random."""
    rng = np.random.default_rng([seed, index])
    if domain is None:
        return _draw(rng, others, labelled, k * max(1, n_values), index, test_speaker,
                     f"(drawn from all: {domain_name} is not one known value per speaker)")
    val: list[str] = []
    # values held only by speakers never validated on (another corpus's, data.extra, e.g. under
    # data.domain='corpus') get no validation speaker
    for g in sorted({v for s, v in domain.items() if labelled.get(s) or s == test_speaker}):
        val += _draw(rng, [s for s in others if domain[s] == g], labelled, k, index, test_speaker,
                     f"of {domain_name} {g}")
    return val


def _draw(rng, rest: list[str], labelled: dict[str, bool], k: int, index: int, test_speaker: str,
          what: str) -> list[str]:
    """k labelled speakers of `rest`, keeping at least one of `rest` for training."""
    pool = [s for s in rest if labelled[s]]
    if len(pool) < k or len(rest) - k < 1:
        raise ValueError(
            f"fold {index} (test speaker {test_speaker!r}): cannot draw {k} validation "
            f"speaker(s) {what} and keep one for training: the other speakers {what} "
            f"are {rest} ({len(pool)} with emotion labels)"
        )
    return [str(s) for s in rng.choice(pool, size=k, replace=False)]


def _check_speakers(utterances, speakers: list[str], labelled: dict[str, bool]) -> None:
    """LOSO tests on one speaker and trains on the others: it needs two, one of them labelled."""
    if len(speakers) >= 2 and any(labelled.values()):
        return
    paths = [os.path.dirname(os.path.abspath(u.path)) for u in utterances]
    where = f"the corpus in {os.path.commonpath(paths)}" if paths else "an empty corpus"
    if len(speakers) < 2:
        found = f"only speaker {speakers[0]!r} ({len(paths)} utterances)" if speakers else "none"
        raise ValueError(f"LOSO needs at least 2 speakers (one to test, the others to train on); "
                         f"{where} has {found}")
    raise ValueError(f"LOSO needs emotion labels to test on: no utterance of {where} has one "
                     f"of the configured classes")


def parse_folds(spec: str | None, n_folds: int) -> list[int]:
    """Fold indices from a `--folds` string: None, '' or 'all'; '0,3'; '2-5' (inclusive); mixes."""
    if spec is None or str(spec).strip().lower() in ("", "all"):
        return list(range(n_folds))
    chosen: set[int] = set()
    for item in str(spec).split(","):
        token = item.strip()
        lo_s, dash, hi_s = token.partition("-")
        try:
            if not lo_s.strip().isdigit() or (dash and not hi_s.strip().isdigit()):
                raise ValueError
            lo = int(lo_s)
            hi = int(hi_s) if dash else lo
        except ValueError:
            raise ValueError(
                f"--folds item {token!r} is not a fold index or a range like 2-5 "
                f"(folds are 0..{n_folds - 1}, n_folds={n_folds})"
            ) from None
        if lo > hi or hi >= n_folds:
            raise ValueError(
                f"--folds item {token!r} is out of range: folds are 0..{n_folds - 1} (n_folds={n_folds})"
            )
        chosen.update(range(lo, hi + 1))
    return sorted(chosen)


def cross_fold(utterances, test_corpus: str, val_speakers_per_gender: int = 0, seed: int = 0,
               domain_name: str = "gender") -> Fold:
    """The one fold of a cross-corpus run: every labelled utterance of corpus `test_corpus`
    tested, the other corpora's speakers trained on (validation speakers drawn from them as
    `loso_folds` draws them)."""
    tested = {u.speaker for u in utterances if u.corpus == test_corpus}
    rest = [u for u in utterances if u.speaker not in tested]
    if not rest or not tested:
        raise ValueError(f"cross-corpus: no {'training' if not rest else 'test'} speakers "
                         f"(test corpus {test_corpus!r})")
    others, labelled, domain, n_values = _speakers(rest)
    k = int(val_speakers_per_gender)
    val_set = set(_validation_speakers(others, labelled, domain, n_values, k, seed, 0, test_corpus,
                                       domain_name) if k else ())
    speaker_of = np.array([u.speaker for u in utterances], dtype=object)
    has_label = np.array([u.emotion is not None for u in utterances], dtype=bool)
    train_speakers = tuple(sorted({u.speaker for u in rest} - val_set))
    return Fold(index=0, test_speaker=test_corpus, train_speakers=train_speakers,
                val_speakers=tuple(sorted(val_set)),
                train=np.flatnonzero(np.isin(speaker_of, np.array(train_speakers, dtype=object))),
                val=np.flatnonzero(np.isin(speaker_of, np.array(sorted(val_set), dtype=object))
                                   & has_label),
                test=np.flatnonzero(np.isin(speaker_of, np.array(sorted(tested), dtype=object))
                                    & has_label))


def config_folds(config, utterances, folds: str | None = None) -> list[Fold]:
    """The folds a run of `config` makes of `utterances` (validation speakers per domain value
    under train.selection='val', drawn with train.split_seed; data.domain_column), those that
    `folds` (a --folds string; None: all) names. With data.test, the one cross-corpus fold;
    with data.extra, the extra corpora's speakers train in every fold and are never tested.
    A chosen fold whose training speakers lack a class of data.classes is a ValueError naming
    the fold and the class, unless train.allow_missing_class (then a warning)."""
    val_k = int(config.train.val_speakers_per_gender) if config.train.selection == "val" else 0
    test = test_source(config)
    if test is not None:
        all_folds = [cross_fold(utterances, test.tag, val_k, int(config.train.split_seed),
                                config.data.domain_column)]
    else:
        extra = {s.tag for s in extra_sources(config)}
        all_folds = loso_folds(utterances, val_k, int(config.train.split_seed),
                               config.data.domain_column,
                               frozenset(u.speaker for u in utterances if u.corpus in extra))
    chosen = [all_folds[i] for i in parse_folds(folds, len(all_folds))]
    _check_classes(config, utterances, chosen)
    return chosen


def missing_classes(fold: Fold, utterances, classes) -> list[str]:
    """The classes of `classes` that no training utterance of `fold` has."""
    present = {utterances[i].emotion for i in fold.train.tolist()}
    return [c for c in classes if c not in present]


def _check_classes(config, utterances, folds) -> None:
    gaps = [(f, m) for f in folds if (m := missing_classes(f, utterances, config.data.classes))]
    if not gaps:
        return
    text = "; ".join(f"fold {f.index} (test speaker {f.test_speaker!r}) has no training "
                     f"utterance of {', '.join(m)}" for f, m in gaps)
    if config.train.get("allow_missing_class", False):
        log.warning("%s: trained anyway (train.allow_missing_class); such a fold's model never "
                    "saw the class, and its UA counts a recall of 0 for it", text)
        return
    raise ValueError(f"{text}: its model would never see the class, and its UA would count a "
                     "recall it cannot have. Add utterances of the class, drop the class from "
                     "data.classes, or pass --allow-missing-class to train anyway")
