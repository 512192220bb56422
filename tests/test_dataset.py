"""dataset.py: segments through the front end into an on-disk cache, and back."""

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from adarl_jax.data.audio import AudioError, load_audio, segment
from adarl_jax.config import input_shape
from adarl_jax.data.corpora import Utterance, read_emodb
from adarl_jax.data.dataset import compute_features, min_samples_for, prepare_dataset
from conftest import tiny_config

EMODB = Path(__file__).resolve().parents[2] / "shared" / "data" / "emodb"


class StandIn:
    """A numpy front end with the real one's signature: frame RMS spread over bins and channels,
    with the real length in [0, 0, 0]. Records the batch shape of every call."""

    def __init__(self, config, fail_on_call=None):
        self.F, self.T = config.frontend.n_bins, config.frontend.n_frames
        self.hop = int(round(config.frontend.hop_s * config.data.sample_rate))
        self.calls = []
        self.fail_on_call = fail_on_call

    def __call__(self, waves, lengths):
        waves, lengths = np.asarray(waves), np.asarray(lengths)
        self.calls.append(waves.shape)
        if self.fail_on_call is not None and len(self.calls) >= self.fail_on_call:
            raise RuntimeError("simulated crash in the front end")
        b = waves.shape[0]
        rms = np.sqrt(np.mean(waves[:, : self.T * self.hop].reshape(b, self.T, self.hop) ** 2, -1))
        out = rms[:, None, :, None] * np.arange(1, self.F + 1)[None, :, None, None] * np.arange(1, 4)
        out = out.astype(np.float32)
        out[:, 0, 0, 0] = lengths
        return out


def expected_features(path, config):
    fe = StandIn(config)
    d = config.data
    wave = load_audio(path, d.sample_rate, min_samples=min_samples_for(config))
    segs, lengths, _ = segment(wave, d.sample_rate, d.segment_s, d.min_tail_s)
    return fe(segs, lengths)


def segment_samples(config):
    return int(round(config.data.segment_s * config.data.sample_rate))


def write(path, seconds, rate=16000, channels=1, freq=220.0, amp=0.3):
    t = np.arange(int(round(seconds * rate))) / rate
    x = amp * np.sin(2 * np.pi * freq * t) * (1 + t)  # rising, so each segment differs
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    sf.write(path, x, rate, subtype="FLOAT")
    return os.fspath(path)


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "audio"
    d.mkdir()
    utts = [
        Utterance(write(d / "c.wav", 7.2, 44100, 2, 330), "s2", "F", "sadness", "t"),  # 3 segments
        Utterance(write(d / "a.wav", 2.0), "s1", "M", "anger", "t"),  # 1
        Utterance(write(d / "b.wav", 6.5, freq=440), "s1", "M", "neutral", "t"),  # 2
        Utterance(write(d / "d.wav", 3.0, freq=550), "s2", "F", None, "t"),  # 1, unlabelled
    ]
    return utts


def test_segments_features_and_labels(tmp_path, corpus):
    config = tiny_config()
    fe = StandIn(config)
    ds = prepare_dataset(config, corpus, tmp_path / "cache", frontend=fe, progress=False, batch_size=4)
    assert ds.utterances == corpus
    assert ds.features.shape == (7, *input_shape(config)) and ds.features.dtype == np.float32
    assert not ds.features.flags.writeable
    assert all(shape == (4, segment_samples(config)) for shape in fe.calls)
    assert len(fe.calls) == 2  # padded last batch
    for i, u in enumerate(corpus):
        rows = np.flatnonzero(ds.segment_utt == i)
        np.testing.assert_allclose(ds.features[rows], expected_features(u.path, config), rtol=1e-6)
        np.testing.assert_allclose(ds.segment_start_s[rows], config.data.segment_s * np.arange(len(rows)))
    assert [int((ds.segment_utt == i).sum()) for i in range(4)] == [3, 1, 2, 1]
    # lengths reached the front end: the 7.2 s file's last segment has 1.2 s of real audio
    c_rows = np.flatnonzero(ds.segment_utt == 0)
    assert ds.features[c_rows[-1], 0, 0, 0] == 19200
    assert ds.emotion.tolist() == [2, 0, 3, -1]  # classes: anger, happiness, sadness, neutral
    assert ds.gender.tolist() == [0, 1, 1, 0]  # genders: F, M
    assert ds.skipped == []
    assert ds.segment_utt.dtype == np.int32 and ds.segment_start_s.dtype == np.float32
    np.testing.assert_array_equal(ds.subset_segments([1, 2]), np.flatnonzero(np.isin(ds.segment_utt, [1, 2])))
    assert len(ds.subset_segments([0])) == 3 and len(ds.subset_segments([])) == 0


def test_summary_counts(tmp_path, corpus, capsys):
    ds = prepare_dataset(tiny_config(), corpus, tmp_path / "cache", frontend=StandIn(tiny_config()), progress=True)
    s = ds.summary()
    assert s["n_utterances"] == 4 and s["n_segments"] == 7 and s["n_skipped"] == 0
    assert s["segments_per_class"] == {"anger": 1, "neutral": 2, "sadness": 3, "unlabelled": 1}
    assert s["utterances_per_class"] == {"anger": 1, "neutral": 1, "sadness": 1, "unlabelled": 1}
    assert s["segments_per_speaker"] == {"s1": 3, "s2": 4}
    files = list(Path(ds.cache_dir).iterdir())
    assert s["cache_bytes"] == sum(f.stat().st_size for f in files) > 7 * np.prod(
        input_shape(tiny_config())) * 4
    assert "7 segments" in capsys.readouterr().err


def test_bad_files_are_named_skipped_and_the_rest_prepared(tmp_path, corpus, caplog):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    sf.write(d / "empty.wav", np.zeros(0, np.float32), 16000)
    nan = np.zeros(16000, np.float32)
    nan[500] = np.nan
    sf.write(d / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(d / "short.wav", np.zeros(30, np.float32), 16000)  # shorter than one window
    bad = [Utterance(os.fspath(d / n), "s3", "F", "anger", "t") for n in ("corrupt.wav", "empty.wav", "nan.wav", "short.wav")]
    utts = [corpus[0], bad[0], bad[1], corpus[1], bad[2], bad[3]]
    with caplog.at_level(logging.WARNING):
        ds = prepare_dataset(tiny_config(), utts, tmp_path / "cache", frontend=StandIn(tiny_config()), progress=False)
    reasons = dict(ds.skipped)
    assert sorted(reasons) == sorted(u.path for u in bad)
    assert "corrupt" in reasons[bad[0].path] or "unreadable" in reasons[bad[0].path]
    assert "empty" in reasons[bad[1].path]
    assert "NaN" in reasons[bad[2].path]
    assert "too short" in reasons[bad[3].path]
    for u in bad:
        assert u.path in caplog.text
    assert ds.utterances == [corpus[0], corpus[1]]  # skipped files are left out
    assert len(ds.features) == 4 and set(ds.segment_utt.tolist()) == {0, 1}
    meta = json.loads((Path(ds.cache_dir) / "meta.json").read_text())
    assert sorted(p for p, _ in meta["skipped"]) == sorted(u.path for u in bad)
    again = prepare_dataset(tiny_config(), utts, tmp_path / "cache", frontend=StandIn(tiny_config()), progress=False)
    assert again.from_cache and again.skipped == ds.skipped and again.utterances == ds.utterances


def test_second_call_loads_from_cache_without_the_front_end(tmp_path, corpus):
    config = tiny_config()
    first = prepare_dataset(config, corpus, tmp_path / "cache", frontend=StandIn(config), progress=False)
    features = np.array(first.features)
    crash = StandIn(config, fail_on_call=1)
    again = prepare_dataset(config, corpus, tmp_path / "cache", frontend=crash, progress=False)
    assert crash.calls == [] and again.from_cache and not first.from_cache
    assert again.cache_dir == first.cache_dir
    np.testing.assert_array_equal(again.features, features)
    # another order of the same utterances: same cache, indices follow the caller's order
    shuffled = [corpus[2], corpus[0], corpus[3], corpus[1]]
    other = prepare_dataset(config, shuffled, tmp_path / "cache", frontend=crash, progress=False)
    assert other.from_cache and other.utterances == shuffled
    for i, u in enumerate(shuffled):
        j = corpus.index(u)
        np.testing.assert_array_equal(other.features[other.subset_segments([i])], features[first.subset_segments([j])])
    # labels are not part of the key: new classes reuse the spectrograms
    config.data.classes = ("neutral", "sadness", "anger")
    relabelled = prepare_dataset(config, corpus, tmp_path / "cache", frontend=crash, progress=False)
    assert relabelled.from_cache and relabelled.emotion.tolist() == [1, 2, 0, -1]


def test_cache_key_follows_files_and_frontend_config(tmp_path, corpus):
    config = tiny_config()
    first = prepare_dataset(config, corpus, tmp_path / "cache", frontend=StandIn(config), progress=False)
    write(corpus[1].path, 2.5)  # the file changes on disk
    fe = StandIn(config)
    changed = prepare_dataset(config, corpus, tmp_path / "cache", frontend=fe, progress=False)
    assert fe.calls and not changed.from_cache and changed.cache_dir != first.cache_dir
    config.frontend.log_floor = 1e-3
    fe2 = StandIn(config)
    other = prepare_dataset(config, corpus, tmp_path / "cache", frontend=fe2, progress=False)
    assert fe2.calls and other.cache_dir not in (first.cache_dir, changed.cache_dir)
    config.data.min_tail_s = 0.25  # changes the segments: the 6.5 s file gets its tail
    fe3 = StandIn(config)
    tails = prepare_dataset(config, corpus, tmp_path / "cache", frontend=fe3, progress=False)
    assert fe3.calls and len(tails.features) == len(other.features) + 1


def test_crash_leaves_no_half_written_cache(tmp_path, corpus):
    config = tiny_config()
    with pytest.raises(RuntimeError, match="simulated"):
        prepare_dataset(config, corpus, tmp_path / "cache", frontend=StandIn(config, fail_on_call=2),
                        progress=False, batch_size=2)
    (folder,) = (tmp_path / "cache").iterdir()
    assert list(folder.iterdir()) == []
    ds = prepare_dataset(config, corpus, tmp_path / "cache", frontend=StandIn(config), progress=False, batch_size=2)
    assert not ds.from_cache and len(ds.features) == 7


def test_cache_holds_no_pickle(tmp_path, corpus):
    ds = prepare_dataset(tiny_config(), corpus, tmp_path / "cache", frontend=StandIn(tiny_config()), progress=False)
    names = sorted(p.name for p in Path(ds.cache_dir).iterdir())
    assert names == ["features.npy", "meta.json"]
    arr = np.load(Path(ds.cache_dir) / "features.npy", allow_pickle=False)
    assert arr.shape == (7, *input_shape(tiny_config()))
    json.loads((Path(ds.cache_dir) / "meta.json").read_text())


def test_labels_outside_config_are_refused(tmp_path, corpus):
    odd = corpus + [Utterance(corpus[0].path.replace("c.wav", "a.wav") + "x", "s1", "M", "boredom", "t")]
    with pytest.raises(ValueError, match="select_classes"):
        prepare_dataset(tiny_config(), odd, tmp_path / "cache", frontend=StandIn(tiny_config()), progress=False)
    with pytest.raises(ValueError, match="twice"):
        prepare_dataset(tiny_config(), corpus + corpus[:1], tmp_path / "cache", frontend=StandIn(tiny_config()))


def test_compute_features_for_files(tmp_path, corpus):
    config = tiny_config()
    paths = [corpus[0].path, corpus[2].path]
    fe = StandIn(config)
    feats, file_index, starts = compute_features(paths, config, frontend=fe, batch_size=4, with_index=True)
    expect = np.concatenate([expected_features(p, config) for p in paths])
    assert feats.shape == (5, *input_shape(config))
    np.testing.assert_allclose(feats, expect, rtol=1e-4, atol=1e-6)
    assert file_index.tolist() == [0, 0, 0, 1, 1]
    np.testing.assert_allclose(starts, [0, 3, 6, 0, 3])
    assert all(shape == (4, segment_samples(config)) for shape in fe.calls)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(AudioError, match="bad.wav"):
        compute_features([corpus[0].path, os.fspath(bad)], config, frontend=fe)


@pytest.mark.skipif(not EMODB.exists(), reason="EmoDB not present")
def test_real_emodb_files(tmp_path):
    utts = [u for u in read_emodb(EMODB) if u.speaker in ("03", "08")][:4]
    config = tiny_config()
    ds = prepare_dataset(config, utts, tmp_path / "cache", frontend=StandIn(config), progress=False)
    assert len(ds.utterances) == 4 and ds.skipped == []
    assert np.isfinite(ds.features).all() and ds.features[:, 1:].max() > 0
    for i, u in enumerate(utts):
        n_seg = len(segment(load_audio(u.path), 16000)[0])
        assert len(ds.subset_segments([i])) == n_seg


@pytest.mark.skipif(not EMODB.exists(), reason="EmoDB not present")
def test_real_frontend_on_real_files(tmp_path):
    pytest.importorskip("adarl_jax.data.frontend")
    config = tiny_config()
    utts = read_emodb(EMODB)[:2]
    ds = prepare_dataset(config, utts, tmp_path / "cache", progress=False, batch_size=2)
    assert ds.features.shape[1:] == input_shape(config) and np.isfinite(ds.features).all()
