"""The recipe's levers: the mel axis, per-speaker normalisation, AdamW/cosine/steps, label
smoothing, domain-only samples and any-format corpus reading, each against an independent
computation."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import soundfile as sf

from adarl_jax.data import frontend as F
from adarl_jax.train import losses
from adarl_jax.config import base_config, load_config, validate
from adarl_jax.data.corpora import Utterance, read_ravdess, select_classes
from adarl_jax.data.dataset import normalize_segments, speaker_normalize, speaker_statistics
from adarl_jax.train.optim import learning_rate_schedule, make_optimizer, num_epochs

from references import ref_log_spectrogram, ref_zscore


def ref_mel_filters(n_fft, sr, n_mels, fmax):
    """Band by band and bin by bin, from the HTK formula written out (no vectorisation)."""
    top = 2595.0 * np.log10(1.0 + fmax / 700.0)
    edges = [700.0 * (10 ** (top * i / (n_mels + 1) / 2595.0) - 1.0) for i in range(n_mels + 2)]
    n_keep = min(n_fft // 2 + 1, int(np.ceil(fmax * n_fft / sr)) + 1)
    out = np.zeros((n_keep, n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_keep):
            f = k * sr / n_fft
            if lo < f <= mid:
                out[k, m] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                out[k, m] = (hi - f) / (hi - mid)
    return out


@pytest.mark.parametrize("n_fft,n_mels,fmax", [(640, 80, 8000.0), (400, 24, 4000.0), (64, 10, 7000.0)])
def test_mel_filterbank_matches_the_htk_formula(n_fft, n_mels, fmax):
    got = F.mel_filterbank(n_fft, 16000, n_mels, fmax)
    np.testing.assert_allclose(got, ref_mel_filters(n_fft, 16000, n_mels, fmax), atol=1e-12)
    assert abs(F.hz_to_mel(1000.0) - 1000.0) < 0.05  # the HTK scale: 1000 Hz is ~1000 mel


def test_mel_filterbank_matches_librosa_htk():
    librosa = pytest.importorskip("librosa")
    ours = F.mel_filterbank(640, 16000, 80, 8000.0)
    theirs = librosa.filters.mel(sr=16000, n_fft=640, n_mels=80, fmin=0.0, fmax=8000.0,
                                 htk=True, norm=None, dtype=np.float64).T
    np.testing.assert_allclose(ours, theirs[:len(ours)], atol=1e-6)
    assert np.all(theirs[len(ours):] == 0)  # the dropped bins carry no weight


def small_spec(**kw):
    base = dict(kind="multi_window", sample_rate=16000, hop=800, n_fft=640, n_bins=24,
                n_frames=20, windows=(320, 480, 640), scale="mel", fmax_hz=8000.0)
    base.update(kw)
    spec = F.FrontendSpec(**base)
    spec.check()
    return spec


def ref_mel_channels(x, length, spec):
    """(C, n_mels, T) log-mel magnitudes: |DFT|^2 of every kept bin through the filters."""
    fb = ref_mel_filters(spec.n_fft, spec.sample_rate, spec.n_bins, spec.fmax_hz)
    out = []
    for w in spec.windows:
        log_mag = ref_log_spectrogram(x, length, w, spec.hop, spec.n_fft, len(fb), spec.n_frames, 1e-300)
        mel = fb.T @ np.exp(2 * log_mag)
        out.append(np.log(np.maximum(np.sqrt(mel), spec.log_floor)))
    return np.stack(out)


def test_mel_front_end_matches_a_float64_reference():
    rng = np.random.default_rng(0)
    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000) + 0.05 * rng.normal(size=16000))
    spec = small_spec()
    length = 12000  # the last frames are padding
    got = np.asarray(F.spectrogram(jnp.asarray(x[None], jnp.float32), jnp.array([length]), spec))[0]
    n_valid = int(np.clip(-(-length // spec.hop), 1, spec.n_frames))
    want = ref_zscore(ref_mel_channels(x, length, spec), n_valid, spec.zscore_eps)
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_speaker_mode_front_end_keeps_raw_log_and_zeroes_padding():
    rng = np.random.default_rng(1)
    x = rng.normal(size=16000) * 0.1
    spec = small_spec(normalize="speaker")
    length = 9000
    got = np.asarray(F.spectrogram(jnp.asarray(x[None], jnp.float32), jnp.array([length]), spec))[0]
    n_valid = int(np.clip(-(-length // spec.hop), 1, spec.n_frames))
    want = np.moveaxis(ref_mel_channels(x, length, spec), 0, -1)
    np.testing.assert_allclose(got[:, :n_valid], want[:, :n_valid], atol=2e-3)
    assert np.all(got[:, n_valid:] == 0)
    # a louder copy of the same audio moves every valid value by log(gain): loudness survives
    louder = np.asarray(F.spectrogram(jnp.asarray(4 * x[None], jnp.float32), jnp.array([length]), spec))[0]
    np.testing.assert_allclose(louder[:, :n_valid] - got[:, :n_valid], np.log(4.0), atol=1e-3)


def test_speaker_statistics_and_normalisation_use_only_valid_frames():
    rng = np.random.default_rng(2)
    n, f, t, c = 7, 5, 6, 3
    feats = rng.normal(size=(n, f, t, c)).astype(np.float32) * 3 + 1
    frames = np.array([6, 2, 6, 4, 1, 6, 3])
    for i in range(n):
        feats[i, :, frames[i]:] = 0.0  # padding, as the front end writes it
    groups = np.array(["a", "b", "a", "b", "a", "c", "c"], dtype=object)
    stats = speaker_statistics(feats, frames, groups)
    out = normalize_segments(feats, frames, groups, stats)
    for g in "abc":
        idx = np.flatnonzero(groups == g)
        pooled = np.concatenate([feats[i, :, :frames[i]] for i in idx], axis=1)  # (f, frames, c)
        mean, std = pooled.mean(1), pooled.std(1)
        np.testing.assert_allclose(stats[g][0][:, 0], mean, rtol=1e-6)
        np.testing.assert_allclose(stats[g][1][:, 0], std + 1e-5, rtol=1e-6)
        normed = np.concatenate([out[i, :, :frames[i]] for i in idx], axis=1)
        np.testing.assert_allclose(normed.mean(1), 0, atol=1e-5)
        np.testing.assert_allclose(normed.std(1), 1, atol=1e-4)
    for i in range(n):
        assert np.all(out[i, :, frames[i]:] == 0)


def test_speaker_normalize_groups_segments_by_their_utterance_speaker():
    from adarl_jax.data.dataset import SegmentDataset

    rng = np.random.default_rng(3)
    feats = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    utts = [Utterance("/a", "s1", "M", "anger", "t"), Utterance("/b", "s2", "F", None, "t")]
    ds = SegmentDataset(features=feats, segment_utt=np.array([0, 1, 0, 1], np.int32),
                        segment_start_s=np.zeros(4, np.float32), utterances=utts,
                        emotion=np.array([0, -1], np.int32), gender=np.array([1, 0], np.int32),
                        skipped=[], segment_frames=np.array([3, 3, 3, 3], np.int32))
    out = speaker_normalize(ds)
    for rows in ([0, 2], [1, 3]):
        pooled = out.features[rows].transpose(1, 0, 2, 3).reshape(2, -1, 3)
        np.testing.assert_allclose(pooled.mean(1), 0, atol=1e-5)
        np.testing.assert_allclose(pooled.std(1), 1, atol=1e-4)
    assert out.features.shape == feats.shape and ds.features is feats  # the input is not changed


def test_label_smoothing_matches_the_smoothed_cross_entropy_by_hand():
    logits = jnp.array([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4], [1.0, 1.0, 1.0, 1.0]])
    labels = jnp.array([0, 3, -1])
    mask = jnp.array([1.0, 1.0, 0.0])
    s = 0.2
    logp = np.asarray(jax.nn.log_softmax(logits))
    want = np.mean([-(1 - s) * logp[i, l] - s / 4 * logp[i].sum() for i, l in ((0, 0), (1, 3))])
    np.testing.assert_allclose(float(losses.cross_entropy(logits, labels, mask, s)), want, rtol=1e-6)
    assert float(losses.cross_entropy(logits, labels, mask, 0.0)) < want  # smoothing costs here


def test_train_steps_rule_and_cosine_schedule():
    c = base_config()
    c.optim.epochs = 7
    assert num_epochs(c, 9) == 7
    c.optim.train_steps = 300
    assert num_epochs(c, 9) == 34 and num_epochs(c, 100) == 3 and num_epochs(c, 1000) == 1
    c.optim.schedule, c.optim.lr = "cosine", 0.01
    sched = learning_rate_schedule(c, 10)  # 30 epochs x 10 steps
    np.testing.assert_allclose(float(sched(0)), 0.01, rtol=1e-6)
    np.testing.assert_allclose(float(sched(150)), 0.005, rtol=1e-5)
    assert float(sched(300)) == pytest.approx(0.0, abs=1e-9)


def test_adamw_is_optax_adamw_on_the_schedule():
    c = base_config()
    c.optim.optimizer, c.optim.schedule, c.optim.lr, c.optim.weight_decay = "adamw", "cosine", 0.01, 0.1
    c.optim.train_steps = 20
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    ours, ref = make_optimizer(c, 5), optax.adamw(optax.cosine_decay_schedule(0.01, 20), weight_decay=0.1)
    s1, s2, p1, p2 = ours.init(params), ref.init(params), params, params
    for k in range(4):
        g = {"w": jnp.array([0.5, -1.0, 2.0]) * (k + 1)}
        u1, s1 = ours.update(g, s1, p1)
        u2, s2 = ref.update(g, s2, p2)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    np.testing.assert_allclose(p1["w"], p2["w"], rtol=1e-6)


def test_bad_lever_values_are_refused_by_name():
    for field, value in (("frontend.scale", "bark"), ("frontend.normalize", "global"),
                         ("optim.optimizer", "lion"), ("optim.schedule", "linear"),
                         ("data.other_emotions", "keep"), ("data.segment_hop_s", 4.0),
                         ("data.segment_hop_s", 1e-6), ("data.segment_hop_s", -1.0),
                         ("data.trim_db", -10.0)):
        with pytest.raises(ValueError, match=field.split(".")[1]):
            load_config("quick", [f"{field}={value}"])
    c = base_config()
    c.frontend.scale, c.frontend.fmax_hz = "mel", 9000.0
    with pytest.raises(ValueError, match="fmax_hz"):
        validate(c)


def test_other_emotions_become_domain_only_samples():
    utts = [Utterance(f"/{e}", "s", "F", e, "t") for e in ("anger", "calm", "sadness", "fear")]
    utts.append(Utterance("/none", "s", "F", None, "t"))
    kept = select_classes(utts, ("anger", "sadness"))
    assert [u.path for u in kept] == ["/anger", "/sadness", "/none"]
    both = select_classes(utts, ("anger", "sadness"), keep_others=True)
    assert [(u.path, u.emotion) for u in both] == [("/anger", "anger"), ("/calm", None),
                                                    ("/sadness", "sadness"), ("/fear", None),
                                                    ("/none", None)]
    assert all(dataclasses.replace(u) == u for u in both)


def test_ravdess_reader_takes_flac_and_other_libsndfile_formats(tmp_path):
    x = np.zeros(800, np.float32)
    for rel, fmt in (("Actor_01/03-01-05-02-01-01-01.flac", "FLAC"),
                     ("Actor_02/03-01-03-01-02-02-02.ogg", "OGG"),
                     ("Actor_03/03-01-04-01-01-01-03.wav", "WAV")):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / rel, x, 16000, format=fmt)
    (tmp_path / "Actor_01" / "notes.txt").write_text("not audio")
    got = sorted((os.path.basename(u.path), u.emotion) for u in read_ravdess(tmp_path))
    assert got == [("03-01-03-01-02-02-02.ogg", "happiness"), ("03-01-04-01-01-01-03.wav", "sadness"),
                   ("03-01-05-02-01-01-01.flac", "anger")]


@pytest.mark.parametrize("name", ["quick", "full", "quick_sgd"])
def test_recipe_configs_keep_the_papers_network(name):
    """Every recipe config keeps F_4 at 8 x 6 x 64, so the network has the paper's 345,874
    trainable parameters (adarl, with conv biases and the 256 centre values)."""
    from adarl_jax.model import param_counts
    from adarl_jax.train.train_step import create_train_state_from_config

    config = load_config(name)
    state = jax.eval_shape(lambda: create_train_state_from_config(
        config, jax.random.key(0, impl="rbg"), 1)[1])
    assert param_counts(state.params)["total"] == 345_874
    fe = config.frontend
    assert max(fe.windows_s) * config.data.sample_rate <= fe.n_fft or name == "quick_sgd"
