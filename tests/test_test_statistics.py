"""The test speaker under the statistics a user has (adarl_jax.train.test_statistics), per-utterance
standardisation (frontend.normalize='utterance') and the speaker-normalised baselines."""

import dataclasses
import json

import numpy as np
import pytest

from conftest import make_corpus, tiny_config, tiny_input_shape, train_workdir
from adarl_jax.data.corpora import Utterance
from adarl_jax.data.dataset import SegmentDataset, group_normalize, normalization_groups, raw_segments
from adarl_jax.data.folds import loso_folds
from adarl_jax.train.test_statistics import parse_mode, pooled_ua, predictions_under_modes, statistics_views


def _dataset(rng, frames_per_seg=(6, 4, 6, 2, 6, 5, 6, 3, 6, 6, 1, 6)):
    """3 speakers x 2 utterances x 2 segments of (F=3, T=6, C=3) features, speaker offsets."""
    utts, seg_utt = [], []
    for s, g in (("a", "M"), ("b", "F"), ("c", "M")):
        for j in range(2):
            utts.append(Utterance(f"/{s}{j}.wav", s, g, ("anger", "sadness")[j], "t"))
    for u in range(len(utts)):
        seg_utt += [u, u]
    n = len(seg_utt)
    offset = np.repeat(np.array([0.0, 5.0, -3.0]), 4)[:, None, None, None]
    feats = (rng.normal(size=(n, 3, 6, 3)) * 2 + offset).astype(np.float32)
    frames = np.array(frames_per_seg, np.int32)
    for i in range(n):
        feats[i, :, frames[i]:] = 0.0
    return SegmentDataset(features=feats, segment_utt=np.array(seg_utt, np.int32),
                          segment_start_s=np.zeros(n, np.float32), utterances=utts,
                          emotion=np.array([0, 2] * 3, np.int32),
                          gender=np.array([1, 1, 0, 0, 1, 1], np.int32), skipped=[],
                          classes=("anger", "happiness", "sadness", "neutral"),
                          segment_frames=frames)


def _zscore(x, frames):
    """An independent per-(freq, channel) z-score over the valid frames of the segments x."""
    pooled = np.concatenate([x[i, :, :frames[i]] for i in range(len(x))], axis=1)
    mean, std = pooled.mean(1, keepdims=True), pooled.std(1, keepdims=True) + 1e-5
    out = np.zeros_like(x)
    for i in range(len(x)):
        out[i, :, :frames[i]] = (x[i, :, :frames[i]] - mean) / std
    return out


def test_raw_segments_undo_the_speaker_standardisation():
    ds = _dataset(np.random.default_rng(0))
    normed = group_normalize(ds, "speaker")
    segs = np.arange(len(ds.segment_utt))
    raw = raw_segments(normed, segs, normalization_groups(normed, "speaker"))
    np.testing.assert_allclose(raw, ds.features, atol=1e-4)


def test_utterance_normalisation_standardises_each_utterance_alone():
    ds = _dataset(np.random.default_rng(1))
    out = group_normalize(ds, "utterance")
    for u in range(len(ds.utterances)):
        segs = np.flatnonzero(ds.segment_utt == u)
        want = _zscore(ds.features[segs], ds.segment_frames[segs])
        np.testing.assert_allclose(out.features[segs], want, atol=1e-4)


def _mean_probe(x, functionals=None):
    """A stand-in model: class scores from the mean of the input (changes with the statistics)."""
    assert functionals is None  # these datasets carry no functionals
    m = np.asarray(x, np.float64).mean(axis=(1, 2, 3))
    logits = np.stack([m, -m, 0.5 * m, np.zeros_like(m)], 1)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_modes_match_an_independent_computation():
    ds = _dataset(np.random.default_rng(2))
    normed = group_normalize(ds, "speaker")
    config = tiny_config()
    config.frontend.normalize = "speaker"
    config.eval.test_statistics = ("utterance", "enrol:1", "train")
    config.eval.enrol_draws = 3
    fold = loso_folds(ds.utterances)[0]  # test speaker a: utterances 0, 1
    got = predictions_under_modes(config, normed, fold, _mean_probe, seed=0)
    # utterance: each test utterance z-scored by itself
    want = []
    for u in fold.test:
        segs = np.flatnonzero(ds.segment_utt == u)
        want.append(int(np.argmax(_mean_probe(_zscore(ds.features[segs], ds.segment_frames[segs])).mean(0))))
    assert got["utterance"] == [want]
    # train: the pooled statistics of the training speakers' valid frames
    train_segs = np.flatnonzero(np.isin(ds.segment_utt, fold.train))
    pooled = np.concatenate([ds.features[i, :, :ds.segment_frames[i]] for i in train_segs], axis=1)
    mean, std = pooled.mean(1, keepdims=True), pooled.std(1, keepdims=True) + 1e-5
    want = []
    for u in fold.test:
        segs = np.flatnonzero(ds.segment_utt == u)
        x = np.zeros_like(ds.features[segs])
        for j, i in enumerate(segs):
            n = ds.segment_frames[i]
            x[j, :, :n] = (ds.features[i, :, :n] - mean) / std
        want.append(int(np.argmax(_mean_probe(x).mean(0))))
    assert got["train"] == [want]
    # enrol:1: 3 draws, one utterance (the statistics') unscored in each, the other labelled
    assert len(got["enrol:1"]) == 3
    for draw in got["enrol:1"]:
        assert sorted(p == -1 for p in draw) == [False, True]
        enrolled = fold.test[draw.index(-1)]
        other = fold.test[1 - draw.index(-1)]
        ref = np.flatnonzero(ds.segment_utt == enrolled)
        pooled = np.concatenate([ds.features[i, :, :ds.segment_frames[i]] for i in ref], axis=1)
        mean, std = pooled.mean(1, keepdims=True), pooled.std(1, keepdims=True) + 1e-5
        segs = np.flatnonzero(ds.segment_utt == other)
        x = np.zeros_like(ds.features[segs])
        for j, i in enumerate(segs):
            n = ds.segment_frames[i]
            x[j, :, :n] = (ds.features[i, :, :n] - mean) / std
        assert draw[1 - draw.index(-1)] == int(np.argmax(_mean_probe(x).mean(0)))


def test_no_modes_without_speaker_statistics_and_bad_modes_are_named():
    ds = _dataset(np.random.default_rng(3))
    config = tiny_config()  # smoke: normalize='segment'
    assert predictions_under_modes(config, ds, loso_folds(ds.utterances)[0], _mean_probe, 0) == {}
    for bad in ("enrol", "enrol:0", "speaker", "utterance:2"):
        with pytest.raises(ValueError, match="test_statistics mode"):
            parse_mode(bad)


def test_pooled_ua_pools_scored_utterances_over_folds():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(4)
    folds, ys, ps = [], [[], []], [[], []]
    for f in range(3):
        y = rng.integers(0, 4, size=9)
        draws = [rng.integers(-1, 4, size=9).tolist() for _ in range(2)]
        folds.append({"utterances": [{"emotion": int(t)} for t in y],
                      "test_statistics": {"enrol:3": draws}})
        for d in range(2):
            keep = np.array(draws[d]) >= 0
            ys[d] += y[keep].tolist()
            ps[d] += np.array(draws[d])[keep].tolist()
    got = pooled_ua(folds, 4)["enrol:3"]
    want = [balanced_accuracy_score(ys[d], ps[d]) for d in range(2)]
    assert got["draws"] == 2 and got["folds"] == 3
    np.testing.assert_allclose(got["ua"], np.mean(want), rtol=1e-9)
    np.testing.assert_allclose(got["sd"], np.std(want, ddof=1), rtol=1e-9)


def test_speaker_zscore_matches_a_scaler_per_speaker():
    from sklearn.preprocessing import StandardScaler

    from adarl_jax.baselines import speaker_zscore

    rng = np.random.default_rng(5)
    x = rng.normal(size=(12, 5)).astype(np.float32) * 3 + 2
    speakers = np.array(list("aabbbcccaabc"), dtype=object)
    got = speaker_zscore(x, speakers)
    for s in "abc":
        rows = speakers == s
        np.testing.assert_allclose(got[rows], StandardScaler().fit_transform(x[rows]), atol=1e-5)


def test_a_speaker_normalised_run_records_and_reports_the_modes(tmp_path):
    workdir = train_workdir(tmp_path, folds="0,1", extra=[
        "--config.frontend.normalize=speaker",
        "--config.eval.test_statistics=('utterance', 'enrol:2', 'train')",
        "--config.eval.enrol_draws=2"])
    from adarl_jax.report import write_report

    result = json.loads(next(workdir.glob("adarl/fold_00_*/result.json")).read_text())
    modes = result["test_statistics"]
    assert set(modes) == {"utterance", "enrol:2", "train"}
    n = len(result["utterances"])
    assert [len(d) for d in modes["enrol:2"]] == [n, n]
    assert all(sum(p == -1 for p in d) == 2 for d in modes["enrol:2"])
    results = write_report(workdir, figures=False)
    assert set(results["adarl"]["ua_under_statistics"]) == {"utterance", "enrol:2", "train"}
    assert "## UA under the statistics a user has" in (workdir / "report.md").read_text()


def test_baselines_fit_both_normalisations(tmp_path):
    import adarl_jax.baselines.opensmile as b

    manifest = make_corpus(tmp_path / "corpus", per_class=3)
    config = tiny_config()
    config.data.corpus, config.data.manifest = "csv", str(manifest)
    config.eval.test_statistics = ("enrol:2",)
    # a stand-in for openSMILE: per-file statistics of the waveform with a speaker offset
    extract = lambda w, sr: np.array([w.std(), np.abs(w).mean(), w.max(), len(w) / sr], np.float32)
    got = {}
    for norm in ("global", "speaker"):
        got[norm] = b.run_opensmile_svm(config, tmp_path / "W", "egemaps", folds="0",
                                        extractor=extract, extractor_id="test",
                                        progress=False, normalize=norm)[0]
    assert got["global"]["variant"] == "opensmile_egemaps_svm"
    assert got["speaker"]["variant"] == "opensmile_egemaps_spk_svm"
    assert got["speaker"]["baseline"]["normalize"] == "speaker"
    assert "test_statistics" not in got["global"]
    draws = got["speaker"]["test_statistics"]["enrol:2"]
    assert len(draws) == config.eval.enrol_draws
    assert all(sum(p == -1 for p in d) == 2 for d in draws)
    assert (tmp_path / "W" / "opensmile_egemaps_spk_svm").is_dir()


def test_functionals_follow_each_mode_by_predicts_group_rule():
    """A model that reads functionals gets the test utterances' raw functionals standardised
    as `predict` would: each recording alone (zeros), the training speakers' pooled statistics
    ('train'), the enrolled utterances' statistics (zeros for one: no spread)."""
    ds = _dataset(np.random.default_rng(4))
    rng = np.random.default_rng(5)
    ds.functionals_raw = (rng.normal(size=(len(ds.utterances), 5)) * 3 + 2).astype(np.float32)
    normed = group_normalize(ds, "speaker")
    config = tiny_config()
    config.frontend.normalize = "speaker"
    config.eval.test_statistics = ("utterance", "enrol:1", "train")
    config.eval.enrol_draws = 2
    fold = loso_folds(ds.utterances)[0]
    seen = []

    def probe(x, functionals):
        seen.append(np.asarray(functionals, np.float64))
        return _mean_probe(x)

    predictions_under_modes(config, normed, fold, probe, seed=0)
    utterance, enrol_a, enrol_b, train = seen
    assert not utterance.any() and not enrol_a.any() and not enrol_b.any()
    pool = ds.functionals_raw[np.asarray(fold.train)].astype(np.float64)
    mean, std = pool.mean(0), pool.std(0) + 1e-8
    test_segs = np.flatnonzero(np.isin(ds.segment_utt, fold.test))
    want = (ds.functionals_raw[ds.segment_utt[test_segs]] - mean) / std
    np.testing.assert_allclose(train, want, rtol=1e-5, atol=1e-5)


def test_group_zscore_standardises_groups_of_two_or_more_and_zeroes_single_recordings():
    from adarl_jax.data.functionals import group_zscore

    x = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 7.0], [2.0, 2.0]], np.float32)
    got = group_zscore(x, np.array(["a", "a", "b", "c"]))
    np.testing.assert_allclose(got[:2], [[-1, -1], [1, 1]], atol=1e-6)
    assert not got[2:].any()


def test_pooled_is_the_speakers_own_statistics_when_a_fold_tests_one_speaker():
    ds = _dataset(np.random.default_rng(6))
    normed = group_normalize(ds, "speaker")
    config = tiny_config()
    config.frontend.normalize = "speaker"
    config.eval.test_statistics = ("pooled",)
    fold = loso_folds(ds.utterances)[1]
    got = predictions_under_modes(config, normed, fold, _mean_probe, seed=0)["pooled"]
    want = []
    for u in fold.test:
        segs = np.flatnonzero(ds.segment_utt == u)
        want.append(int(np.argmax(_mean_probe(normed.features[segs]).mean(0))))
    assert got == [want]


def test_statistics_views_standardise_the_training_segments_as_a_user_would():
    """augment.statistics_views: each recording by itself, and the training speakers' pooled
    statistics, against z-scores of the raw features computed here."""
    ds = _dataset(np.random.default_rng(5))
    normed = group_normalize(ds, "speaker")
    config = tiny_config()
    config.frontend.normalize = "speaker"
    config.augment.statistics_views = ("utterance", "train")
    fold = loso_folds(ds.utterances)[2]  # test speaker c: a and b train
    segs = normed.subset_segments(fold.train)
    utterance, train = statistics_views(config, normed, fold.train, segs)
    frames = ds.segment_frames[segs]
    np.testing.assert_allclose(train, _zscore(ds.features[segs], frames), atol=1e-3)
    for u in fold.train:
        rows = np.flatnonzero(ds.segment_utt[segs] == u)
        np.testing.assert_allclose(utterance[rows], _zscore(ds.features[segs[rows]], frames[rows]),
                                   atol=1e-3)
    config.augment.statistics_views = ()
    assert list(statistics_views(config, normed, fold.train, segs)) == []


def test_a_fold_trains_on_its_segments_and_each_view_of_them():
    from adarl_jax.train.trainer import setup_run
    from adarl_jax.train.sharding import checked_mesh

    small = _dataset(np.random.default_rng(6))
    features = np.zeros((len(small.features), *tiny_input_shape()), np.float32)
    features[:, :3, :6] = small.features  # the model's input shape, the rest silent
    ds = group_normalize(dataclasses.replace(small, features=features), "speaker")
    config = tiny_config()
    config.frontend.normalize = "speaker"
    config.augment.statistics_views = ("train",)
    fold = loso_folds(ds.utterances)[2]
    segs = ds.subset_segments(fold.train)
    run = setup_run(config, ds, fold, checked_mesh(config))
    assert run.n_train == 2 * len(segs)
    features, order, emotion, domain, _ = run.loop.data
    np.testing.assert_array_equal(features[:len(segs)], ds.features[segs])
    np.testing.assert_array_equal(features[len(segs):],
                                  next(statistics_views(config, ds, fold.train, segs)))
    want = ds.emotion[ds.segment_utt[segs]]
    np.testing.assert_array_equal(emotion, np.concatenate([want, want]))


def test_statistics_views_need_speaker_statistics_and_known_modes():
    from adarl_jax.config import validate

    config = tiny_config()
    config.augment.statistics_views = ("train",)
    config.frontend.normalize = "segment"
    with pytest.raises(ValueError, match="statistics_views"):
        validate(config)
    config.frontend.normalize = "speaker"
    validate(config)
    config.augment.statistics_views = ("enrol:3",)
    with pytest.raises(ValueError, match="statistics_views"):
        validate(config)
    config.augment.statistics_views = ("utterance",)
    config.model.variant = "adarl_fusion"
    with pytest.raises(ValueError, match="also reads functionals"):
        validate(config)
