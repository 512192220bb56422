"""The test speaker under the statistics a user has (frontend.normalize='speaker').

LOSO standardises the test speaker with the statistics of all its utterances (`all`); a user
of `predict` rarely has them. After a fold is tested, its selected model labels the test
speaker again under each mode of `config.eval.test_statistics`:

  utterance   each recording standardised by its own statistics (one file, nothing else)
  enrol:K     each test speaker's statistics from K of its utterances drawn at random (K <=
              its utterances - 1); those K are not scored; `config.eval.enrol_draws` draws,
              each scored on its own
  pooled      one set of statistics for the fold's whole test set (every test speaker
              together: the same as LOSO's own when a fold tests one speaker; a cross-corpus
              fold tests many, as one `predict --speaker-from call` over a corpus would)
  train       the pooled statistics of the fold's training speakers (no statistics of the
              test speaker at all: the CNN's counterpart of globally standardised functionals)

Each mode's predictions go into the fold's result.json under `test_statistics` as one class
index per test utterance (in the order of `utterances`; -1 where an utterance gave statistics
and is not scored), one list per draw. `pooled_ua` pools them over folds: per draw, the UA of
every fold's scored utterances together, then the mean and spread over draws.

A model that reads openSMILE functionals (adarl_jax.data.functionals) gets its test utterances'
functionals standardised under the same mode, by the rule `predict` applies to a speaker
group: with the K enrolled utterances' statistics (enrol:K; zeros for K = 1), each recording
by itself ('utterance': zeros, the functionals then say nothing), the whole test set's
('pooled') or the pooled statistics of the fold's training speakers ('train').
"""

from __future__ import annotations

import numpy as np

from adarl_jax import metrics
from adarl_jax.data.dataset import normalization_groups, normalize_segments, raw_segments, speaker_statistics
from adarl_jax.data.functionals import DOMAIN_SET, group_zscore, moments

__all__ = ["enrolment_draws", "mode_statistics", "parse_mode", "pooled_ua", "predictions_under_modes",
           "speaker_utterances", "statistics_views", "test_statistics_modes", "training_statistics",
           "VIEW_MODES"]


def parse_mode(mode: str) -> tuple[str, int]:
    """'utterance' | 'pooled' | 'train' | 'enrol:K' -> (name, K) (K = 0 unless enrol)."""
    name, _, k = str(mode).partition(":")
    if name in ("utterance", "pooled", "train") and not k:
        return name, 0
    if name == "enrol" and k.isdigit() and int(k) >= 1:
        return name, int(k)
    raise ValueError(f"eval.test_statistics mode {mode!r}: expected 'utterance', 'pooled', 'train' or "
                     "'enrol:K' with K >= 1")


def test_statistics_modes(config) -> tuple[str, ...]:
    """The modes to score (none unless the model was trained on speaker-standardised input)."""
    section = config.get("eval")
    if config.frontend.normalize != "speaker" or section is None:
        return ()
    modes = tuple(section.get("test_statistics", ()))
    for m in modes:
        parse_mode(m)
    return modes


def _pooled(stats: dict, counts: dict, groups) -> tuple[np.ndarray, np.ndarray]:
    """The statistics of several groups together, from each group's (mean, std) and frame count."""
    n = sum(counts[g] for g in groups)
    mean = sum(stats[g][0] * counts[g] for g in groups) / n
    sq = sum((np.square(stats[g][1]) + np.square(stats[g][0])) * counts[g] for g in groups) / n
    return mean, np.sqrt(np.maximum(sq - mean * mean, 0.0))


VIEW_MODES = ("utterance", "train")


def mode_statistics(name: str, dataset, train_utts, raw, frames, seg_utt, eps: float):
    """(group per segment, {group: (mean, std)}) that standardise the segments whose front-end
    values are `raw` under mode 'utterance' (each utterance its own statistics) or 'train'
    (the training speakers' pooled statistics)."""
    if name == "utterance":
        return seg_utt, speaker_statistics(raw, frames, seg_utt, eps)
    if name == "train":
        pooled = training_statistics(dataset, train_utts)
        return np.array(["train"] * len(raw), object), {"train": (pooled["mean"], pooled["std"])}
    raise ValueError(f"statistics mode {name!r}: expected one of {', '.join(VIEW_MODES)}")


def statistics_views(config, dataset, train_utts, segs: np.ndarray):
    """augment.statistics_views: the training segments `segs` again, standardised under each
    listed mode ('utterance': each recording by itself; 'train': the training speakers' pooled
    statistics), exactly as the test-statistics modes and `predict` standardise a new speaker;
    one (n, F, T, C) float32 array per mode, yielded one at a time (frames past a segment's
    end stay 0). So the model also learns from the inputs a user without the speaker's
    statistics gives it."""
    modes = tuple(config.augment.get("statistics_views", ()))
    if not modes:
        return
    if config.frontend.normalize != "speaker":
        raise ValueError("augment.statistics_views needs frontend.normalize='speaker' (the views "
                         f"replace the speaker's statistics); it is {config.frontend.normalize!r}")
    speakers = normalization_groups(dataset, "speaker")
    raw = raw_segments(dataset, segs, speakers)
    frames, seg_utt = dataset.segment_frames[segs], dataset.segment_utt[segs]
    eps = float(config.frontend.zscore_eps)
    for name in modes:
        groups, stats = mode_statistics(name, dataset, train_utts, raw, frames, seg_utt, eps)
        yield normalize_segments(raw, frames, groups, stats)


def predictions_under_modes(config, dataset, fold, predict_probs, seed: int) -> dict:
    """{mode: [[class index or -1 per test utterance] per draw]} for the fold's test speaker.

    `predict_probs(features (n, F, T, C), functionals (n, d) or None) -> (n, K)` segment
    probabilities of the fold's selected model; `dataset` is speaker-standardised (its
    `norm_stats` hold each speaker's statistics)."""
    modes = test_statistics_modes(config)
    if not modes or not len(fold.test):
        return {}
    speakers = normalization_groups(dataset, "speaker")
    test_utts = np.asarray(fold.test, np.int64)
    segs = dataset.subset_segments(test_utts)
    raw = raw_segments(dataset, segs, speakers)
    frames = dataset.segment_frames[segs]
    seg_utt = dataset.segment_utt[segs]
    eps = float(config.frontend.zscore_eps)
    draws = int(config.eval.get("enrol_draws", 5))
    functionals = _TestFunctionals(dataset, fold, seg_utt)
    out = {}
    for mode in modes:
        name, k = parse_mode(mode)
        if name == "utterance":
            groups, stats = mode_statistics(name, dataset, fold.train, raw, frames, seg_utt, eps)
            out[mode] = [_labels(predict_probs, raw, frames, seg_utt, groups, test_utts, stats,
                                 None, functionals.own())]
        elif name == "pooled":
            whole = np.zeros(len(segs), np.int8)
            stats = speaker_statistics(raw, frames, whole, eps)
            out[mode] = [_labels(predict_probs, raw, frames, seg_utt, whole, test_utts, stats,
                                 None, functionals.pooled())]
        elif name == "train":
            groups, stats = mode_statistics(name, dataset, fold.train, raw, frames, seg_utt, eps)
            out[mode] = [_labels(predict_probs, raw, frames, seg_utt, groups, test_utts, stats,
                                 None, functionals.train_standardised())]
        else:
            seg_speaker = speakers[segs]
            runs = []
            for chosen in enrolment_draws(speaker_utterances(dataset.utterances, test_utts), k,
                                          draws, seed, fold.index):
                enrolled, stats = set(), {}
                for spk, utts in chosen.items():
                    enrolled.update(utts.tolist())
                    sel = np.isin(seg_utt, utts)
                    stats[spk] = speaker_statistics(raw[sel], frames[sel], seg_speaker[sel], eps)[spk]
                runs.append(_labels(predict_probs, raw, frames, seg_utt, seg_speaker, test_utts,
                                    stats, enrolled, functionals.enrolled(seg_speaker, enrolled)))
            out[mode] = runs
    return out


def training_statistics(dataset, train_utts) -> dict:
    """The training speakers' pooled statistics, from a speaker-standardised dataset: 'mean'
    and 'std' ((F, 1, C), what standardises a spectrogram), 'frames' (how many frames gave
    them; with overlapping segments a frame counts once per segment holding it) and, when the dataset carries functionals, 'functionals_mean' and 'functionals_std'.
    What the 'train' mode uses, and what a model keeps for `predict --speaker-from training`."""
    speakers = normalization_groups(dataset, "speaker")
    counts = {}
    for i in dataset.subset_segments(train_utts):
        counts[speakers[i]] = counts.get(speakers[i], 0) + int(dataset.segment_frames[i])
    mean, std = _pooled(dataset.norm_stats, counts, list(counts))
    out = {"mean": np.asarray(mean, np.float64), "std": np.asarray(std, np.float64),
           "frames": np.int64(sum(counts.values()))}
    if dataset.functionals_raw is not None:
        m = moments(dataset.functionals_raw[np.asarray(train_utts, np.int64)])
        out.update(functionals_mean=m[0], functionals_std=m[1])
    return out


def speaker_utterances(utterances, utts) -> dict:
    """{speaker: its utterances among `utts` (indices into `utterances`), as an array}, in order
    of first appearance. A speaker with one utterance gives no enrolment statistics and is left
    out of enrol:K."""
    by = {}
    for u in utts:
        by.setdefault(utterances[u].speaker, []).append(int(u))
    return {s: np.array(v) for s, v in by.items() if len(v) >= 2}


def enrolment_draws(by_speaker: dict, k: int, draws: int, seed: int, fold_index: int):
    """enrol:K's `draws` draws, each {speaker: its enrolled utterances}: per speaker of
    `by_speaker` (speaker_utterances'), min(K, its utterances - 1) of them without replacement,
    from one generator seeded with (seed, fold_index, K), so the CNN and the baselines enrol
    the same utterances."""
    rng = np.random.default_rng([seed, fold_index, k])
    for _ in range(draws):
        yield {spk: rng.choice(utts, size=min(k, len(utts) - 1), replace=False)
               for spk, utts in by_speaker.items()}


class _TestFunctionals:
    """The test segments' functionals standardised as a mode has them (None: the model reads
    none)."""

    def __init__(self, dataset, fold, seg_utt):
        self.raw = dataset.functionals_raw
        if self.raw is None:
            return
        self.seg_raw = self.raw[seg_utt]
        self.seg_utt = seg_utt
        self.train = moments(self.raw[np.asarray(fold.train, np.int64)])
        # labels (DOMAIN_SET) are what they are under every mode: no statistics apply
        self.fixed = dataset.functionals_set == DOMAIN_SET

    def _unchanged(self) -> bool:
        """True when a mode has nothing to standardise (no functionals, or labels)."""
        return self.raw is None or self.fixed

    def _as_is(self):
        return None if self.raw is None else self.seg_raw

    def own(self):
        """Each test segment's functionals standardised by its utterance alone: zeros."""
        if self._unchanged():
            return self._as_is()
        return group_zscore(self.seg_raw, self.seg_utt)

    def pooled(self):
        """Every test segment's functionals with the statistics of all test utterances."""
        if self._unchanged():
            return self._as_is()
        whole = np.zeros(len(self.seg_raw), np.int8)
        return group_zscore(self.seg_raw, whole,
                            {0: moments(self.raw[np.unique(self.seg_utt)])})

    def train_standardised(self):
        """Every test segment's functionals with the training speakers' pooled statistics."""
        if self._unchanged():
            return self._as_is()
        return group_zscore(self.seg_raw, np.zeros(len(self.seg_raw), np.int8),
                            {0: self.train})

    def enrolled(self, seg_speaker, enrolled: set):
        """Each test speaker's functionals with the statistics of its enrolled utterances."""
        if self._unchanged():
            return self._as_is()
        stats = {}
        for spk in dict.fromkeys(seg_speaker.tolist()):
            own = set(self.seg_utt[seg_speaker == spk].tolist())
            stats[spk] = moments(self.raw[sorted(own & enrolled)])
        return group_zscore(self.seg_raw, seg_speaker, stats)


def _labels(predict_probs, raw, frames, seg_utt, groups, test_utts, stats, excluded,
            functionals=None) -> list[int]:
    """The argmax of each test utterance's mean segment probabilities (-1: excluded, or its
    group has no statistics)."""
    known = np.array([g in stats for g in groups.tolist()], bool)
    probs = np.zeros((len(raw), 0))
    if known.any():
        probs = np.asarray(predict_probs(
            normalize_segments(raw[known], frames[known], groups[known], stats),
            None if functionals is None else functionals[known]))
    labels = metrics.utterance_labels(probs, seg_utt[known], test_utts)
    return [-1 if excluded and int(u) in excluded else p for u, p in zip(test_utts, labels)]


def pooled_ua(fold_results: list[dict], num_classes: int) -> dict:
    """{mode: {'ua': mean over draws, 'sd': spread over draws, 'draws': n, 'n': utterances
    scored per draw}} from the folds' `test_statistics`, pooled over folds."""
    modes = {}
    for r in fold_results:
        for mode in r.get("test_statistics", {}):
            modes.setdefault(mode, None)
    out = {}
    for mode in modes:
        per_fold = [r for r in fold_results if mode in r.get("test_statistics", {})]
        draws = min(len(r["test_statistics"][mode]) for r in per_fold)
        uas, n = [], 0
        for d in range(draws):
            y, p = [], []
            for r in per_fold:
                labels = [u["emotion"] for u in r["utterances"]]
                for t, q in zip(labels, r["test_statistics"][mode][d]):
                    if q >= 0:
                        y.append(t)
                        p.append(q)
            uas.append(metrics.unweighted_accuracy(np.array(y), np.array(p), num_classes))
            n = len(y)
        out[mode] = {"ua": float(np.mean(uas)), "sd": float(np.std(uas, ddof=1)) if draws > 1 else 0.0,
                     "draws": draws, "n": n, "folds": len(per_fold)}
    return out
