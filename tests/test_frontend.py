"""frontend.py against an independent float64 numpy reference of the definition in its docstring.

The reference computes every frame with an explicit DFT matrix (no FFT, no framing tricks); a
separate test ties its centring to scipy.signal.ShortTimeFFT. Accuracy is tested with the
paper's config (1600-point DFT, 400 bins, 300 frames) on one or two segments; everything else
uses a small config so that the file runs in seconds.
"""

from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
import scipy.signal

from adarl_jax.data import frontend as F
from adarl_jax.config import base_config, input_shape
from references import ref_log_spectrogram, ref_zscore

EMODB = Path(__file__).resolve().parents[2] / "shared" / "data" / "emodb"
KINDS = ("multi_window", "colormap")


# --------------------------------------------------------------------------------------------
# The reference: float64, one frame at a time.


def ref_jet(x):
    """matplotlib's own 'jet' segment data, interpolated exactly (no lookup table)."""
    seg = matplotlib.colormaps["jet"]._segmentdata
    return np.stack([np.interp(x, [p[0] for p in seg[c]], [p[1] for p in seg[c]])
                     for c in ("red", "green", "blue")])


def ref_frontend(x, length, spec):
    """(L,), int -> (n_bins, n_frames, 3), float64."""
    n_valid = int(np.clip(-(-length // spec.hop), 1, spec.n_frames))
    log = lambda w: ref_log_spectrogram(x, length, w, spec.hop, spec.n_fft, spec.n_bins,
                                        spec.n_frames, spec.log_floor)
    if spec.kind == "multi_window":
        channels = [log(w) for w in spec.windows]
        if spec.third_channel == "mean":  # the two windows' log spectrograms, then their mean
            channels.append(0.5 * (channels[0] + channels[1]))
        channels = np.stack(channels)
    else:
        s = log(spec.colormap_window)
        v = s[:, :n_valid]
        span = v.max() - v.min()
        flat = span <= F.FLAT_SPAN  # part of the definition: a flat map scales to 0
        channels = ref_jet(np.zeros_like(s) if flat else np.clip((s - v.min()) / span, 0, 1))
    return ref_zscore(channels, n_valid, spec.zscore_eps)


# --------------------------------------------------------------------------------------------
# Configs and helpers


def paper_config(kind="multi_window"):
    c = base_config()
    c.frontend.kind = kind
    return c


def small_config(kind="multi_window", n_fft=800, third_channel="window"):
    """0.3 s segments: 10 ms hop, 30 frames, 64 bins; windows of 20/30/40 ms, or 20 and 40 ms
    and their mean (third_channel='mean')."""
    c = base_config()
    c.frontend.kind = kind
    c.frontend.third_channel = third_channel
    if third_channel == "mean":
        c.frontend.windows_s = (0.020, 0.040)
    c.data.segment_s = 0.3
    c.frontend.n_frames = 30
    c.frontend.n_fft = n_fft
    c.frontend.n_bins = 64
    return c


@lru_cache(maxsize=None)
def _frontend(kind, which, **kw):
    config = paper_config(kind) if which == "paper" else small_config(kind, **kw)
    return F.make_frontend(config)


def assert_agrees(got, want, tol, where=None):
    """|got - want| <= tol * max(1, |want|): absolute for ordinary values, relative for the large
    ones a z-score gives a nearly constant colour channel (e.g. blue is mostly 1 on noise)."""
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    if where is not None:
        err = err[where]
    assert err.max() <= tol, f"max error {err.max():.3g} > {tol}"


def segment_samples(spec):
    return spec.n_frames * spec.hop


def noise(n, seed=0):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


def well_conditioned(x, length, spec, below_db=60.0):
    """(F, T, C) mask of bins within `below_db` of their frame's RMS level, in every channel.

    Far below that, |X| is at the level of float32 rounding of the frame itself.
    """
    windows = spec.windows if spec.kind == "multi_window" else (spec.colormap_window,)
    masks = []
    for w in windows:
        s = ref_log_spectrogram(x, length, w, spec.hop, spec.n_fft, spec.n_bins, spec.n_frames,
                                spec.log_floor)
        level = 0.5 * np.log(np.mean(np.exp(2 * s), axis=0, keepdims=True))
        masks.append((s - level) * 20 / np.log(10) > -below_db)
    mask = np.all(masks, axis=0)[..., None]
    return np.broadcast_to(mask, (spec.n_bins, spec.n_frames, 3))


# --------------------------------------------------------------------------------------------
# Agreement with the reference


def test_reference_centring_matches_scipy_short_time_fft():
    spec = F.FrontendSpec.from_config(small_config())
    x = noise(segment_samples(spec))
    length = len(x) - 700
    clean = np.where(np.arange(len(x)) < length, x, 0).astype(np.float64)
    for w in spec.windows:
        stft = scipy.signal.ShortTimeFFT(scipy.signal.get_window("hamming", w), hop=spec.hop,
                                         fs=spec.sample_rate, mfft=spec.n_fft)
        want = np.abs(stft.stft(clean, p0=0, p1=spec.n_frames)[:spec.n_bins])
        want = np.log(np.maximum(want, 1e-300))
        got = ref_log_spectrogram(x, length, w, spec.hop, spec.n_fft, spec.n_bins, spec.n_frames,
                                  1e-300)
        np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_paper_config_matches_reference_on_noise(kind):
    fn = _frontend(kind, "paper")
    spec = fn.spec
    x = noise(segment_samples(spec), seed=1)
    length = 40000  # 2.5 s: 250 valid frames, the rest zero-padded
    got = np.asarray(fn(x[None], np.array([length], np.int32)))[0]
    want = ref_frontend(x, length, spec)
    assert got.shape == (400, 300, 3) and got.dtype == np.float32
    # colormap: min-max scaling takes the deepest spectral null as its 0, the least accurate
    # bin in float32 (3.5e-4 off here); that shift, through jet's slope and the z-score of the
    # nearly constant blue channel (std 0.03 on white noise), gives 1.4e-3 at the worst pixel.
    assert_agrees(got, want, 1e-3 if kind == "multi_window" else 2e-3)
    assert np.all(got[:, 250:] == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_paper_config_matches_reference_on_emodb_speech(kind):
    wav_dir = EMODB / "wav"
    if not wav_dir.is_dir():
        pytest.skip("EmoDB not found beside the checkout (../shared/data/emodb/wav)")
    sf = pytest.importorskip("soundfile")
    fn = _frontend(kind, "paper")
    spec = fn.spec
    wave, rate = sf.read(sorted(wav_dir.glob("*.wav"))[0], dtype="float32")
    assert rate == spec.sample_rate
    wave = wave[:segment_samples(spec)]
    x = np.zeros(segment_samples(spec), np.float32)
    x[:len(wave)] = wave
    got = np.asarray(fn(x[None], np.array([len(wave)], np.int32)))[0]
    want = ref_frontend(x, len(wave), spec)
    # Bins far below their frame's level carry float32 rounding of the frame (~1e-3 there).
    assert_agrees(got, want, 1e-3, where=well_conditioned(x, len(wave), spec))
    assert_agrees(got, want, 1e-2)
    assert np.mean(np.abs(got - want)) < 1e-5


READINGS = (("multi_window", "window"), ("colormap", "window"), ("multi_window", "mean"))


@pytest.mark.parametrize("kind, third_channel", READINGS)
@pytest.mark.parametrize("n_fft", [800, 400])  # 400 < the 30 and 40 ms windows: aliased frames
def test_small_config_matches_reference(kind, third_channel, n_fft):
    fn = _frontend(kind, "small", n_fft=n_fft, third_channel=third_channel)
    spec = fn.spec
    L = segment_samples(spec)
    x = np.stack([noise(L, seed=2), noise(L, seed=3)])
    lengths = np.array([L, 1234], np.int32)
    got = np.asarray(fn(x, lengths))
    for b in range(2):
        assert_agrees(got[b], ref_frontend(x[b], lengths[b], spec), 1e-4)


def test_mean_reading_keeps_the_20_and_40_ms_channels():
    mean = _frontend("multi_window", "small", third_channel="mean")
    three = _frontend("multi_window", "small")
    assert mean.spec.windows == (320, 640) and mean.spec.output_shape == (64, 30, 3)
    L = segment_samples(mean.spec)
    x, lengths = noise(L, seed=4)[None], np.array([1234], np.int32)
    got, want = np.asarray(mean(x, lengths)), np.asarray(three(x, lengths))
    np.testing.assert_allclose(got[..., :2], want[..., [0, 2]], atol=1e-5)
    assert np.abs(got[..., 2] - want[..., 1]).max() > 0.1  # the mean is not the 30 ms window


# --------------------------------------------------------------------------------------------
# Shapes, padding, edge cases


@pytest.mark.parametrize("kind, third, windows", [
    ("multi_window", "window", (0.020, 0.030, 0.040)), ("multi_window", "mean", (0.020, 0.040)),
    ("colormap", "window", (0.020, 0.030, 0.040)), ("colormap", "mean", (0.020, 0.040))])
def test_channel_count_follows_the_config(kind, third, windows):
    c = small_config(kind)
    c.frontend.third_channel, c.frontend.windows_s = third, windows
    spec = F.FrontendSpec.from_config(c)
    assert spec.output_shape == input_shape(c) == (64, 30, 3)


@pytest.mark.parametrize("third, windows, match", [
    ("mean", (0.020, 0.030, 0.040), "must name 2 windows"),
    ("window", (0.020, 0.040), "must name 3 windows"),
    ("median", (0.020, 0.040), "frontend.third_channel='median'")])
def test_window_readings_that_do_not_give_three_channels_are_rejected(third, windows, match):
    c = small_config()
    c.frontend.third_channel, c.frontend.windows_s = third, windows
    with pytest.raises(ValueError, match=match):
        F.FrontendSpec.from_config(c)


def test_spec_from_config_is_in_samples_and_hashable():
    spec = F.FrontendSpec.from_config(paper_config())
    assert (spec.hop, spec.n_fft, spec.n_bins, spec.n_frames) == (160, 1600, 400, 300)
    assert spec.windows == (320, 480, 640) and spec.colormap_window == 320
    assert spec.output_shape == (400, 300, 3)
    assert hash(spec) == hash(F.FrontendSpec.from_config(paper_config()))
    c = small_config()
    c.frontend.kind = "mel"
    with pytest.raises(ValueError, match="kind"):
        F.FrontendSpec.from_config(c)


@pytest.mark.parametrize("kind", KINDS)
def test_frames_beyond_length_are_zero_and_padding_content_is_ignored(kind):
    fn = _frontend(kind, "small")
    spec = fn.spec
    L = segment_samples(spec)
    lengths = np.array([L, 1000, 1001, 155], np.int32)  # valid frames: 30, 7, 7, 1
    clean = np.stack([noise(L, seed=i) for i in range(4)])
    clean[np.arange(L)[None] >= lengths[:, None]] = 0
    garbage = clean + 100 * (np.arange(L)[None] >= lengths[:, None]) * noise(L, seed=9)
    a, b = np.asarray(fn(clean, lengths)), np.asarray(fn(garbage, lengths))
    np.testing.assert_array_equal(a, b)
    for i, n_valid in enumerate([30, 7, 7, 1]):
        assert np.all(a[i, :, n_valid:] == 0)
        assert np.all(np.abs(a[i, :, :n_valid]).max(axis=0) > 0)
        # each channel is z-scored over its valid region
        v = a[i, :, :n_valid].astype(np.float64)
        np.testing.assert_allclose(v.mean(axis=(0, 1)), 0, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_silent_and_very_short_segments_are_finite(kind):
    fn = _frontend(kind, "small")
    spec = fn.spec
    L = segment_samples(spec)
    lengths = np.array([L, 0, 1, 2, spec.hop - 1, spec.hop, spec.hop + 1], np.int32)
    x = np.stack([noise(L, seed=i) for i in range(len(lengths))])
    x[0] = 0  # all-zero but full length
    out = np.asarray(fn(x, lengths))
    assert np.all(np.isfinite(out))
    assert np.all(out[0] == 0) and np.all(out[1] == 0)  # silence: constant log floor -> 0
    assert np.all(out[2:6, :, 1:] == 0)  # lengths 1..hop: only frame 0 is valid
    assert np.all(out[6, :, 2:] == 0)
    for b in range(2, len(lengths)):
        assert_agrees(out[b], ref_frontend(x[b], lengths[b], spec), 1e-3 if b > 2 else 5e-2)
    # length 1: frame 0 holds one sample, a flat spectrum; float32 rounding (1e-7) over
    # zscore_eps (1e-5) leaves |z| ~ 1e-2 where float64 gives ~0; the colormap calls it flat.
    assert np.abs(out[2]).max() < (5e-2 if kind == "multi_window" else 1e-12)


# --------------------------------------------------------------------------------------------
# Transformations


def test_frontend_compiles_once_per_shape_and_chunking_does_not_change_results():
    config = small_config()
    fn = F.make_frontend(config)
    L = segment_samples(fn.spec)
    x = np.stack([noise(L, seed=i) for i in range(5)])
    lengths = np.array([L, 900, 2000, 1, L], np.int32)
    first = np.asarray(fn(x, lengths))
    fn(x[::-1].copy(), lengths[::-1].copy())
    assert fn._cache_size() == 1
    for chunk in (0, 2):  # whole batch; chunks of 2 with a remainder of 1
        np.testing.assert_allclose(np.asarray(F.make_frontend(config, chunk=chunk)(x, lengths)),
                                   first, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_pure_functions_jit_and_vmap(kind):
    spec = F.FrontendSpec.from_config(small_config(kind))
    L = segment_samples(spec)
    x = jnp.asarray(np.stack([noise(L, seed=i) for i in range(3)]))
    lengths = jnp.array([L, 700, 3], jnp.int32)
    batched = jax.jit(F.spectrogram, static_argnums=2)(x, lengths, spec)  # spec: a static arg
    one_at_a_time = jax.jit(jax.vmap(lambda a, n: F.spectrogram(a, n, spec)))(x, lengths)
    single = jax.jit(lambda a, n: F.spectrogram(a, n, spec))(x[1], lengths[1])  # no batch axis
    assert batched.shape == (3, spec.n_bins, spec.n_frames, 3)
    # different fusions round differently; min-max scaling of the 3-sample segment's smooth
    # spectrum magnifies that a little
    np.testing.assert_allclose(one_at_a_time, batched, atol=1e-4)
    np.testing.assert_allclose(single, batched[1], atol=1e-4)


def test_building_blocks_shapes():
    x = jnp.asarray(noise(1000))
    frames = jax.jit(F.frame_signal, static_argnums=(2, 3, 4))(x, 1000, 64, 10, 100)
    assert frames.shape == (100, 64)
    np.testing.assert_array_equal(frames[5, :], np.asarray(x)[18:82])  # starts at t*hop - 32
    np.testing.assert_array_equal(frames[0, :32], 0)

    @jax.jit
    def logs_and_z(x, length):
        logs = F.log_magnitude_stft(x, length, (32, 48), 10, 64, 20, 100, 1e-6)
        return logs, F.masked_zscore(logs, F.valid_frames(length // 2, 10, 100)[..., None, :], 1e-5)

    logs, z = logs_and_z(x[None], jnp.array([1000]))
    assert logs.shape == (1, 2, 100, 20) and z.shape == logs.shape
    assert np.all(np.asarray(z)[..., 50:, :] == 0) and np.all(np.asarray(z)[..., :50, :] != 0)


# --------------------------------------------------------------------------------------------
# The colour map


def test_jet_matches_matplotlib():
    jet = matplotlib.colormaps["jet"]
    x = np.random.default_rng(0).random(10_000).astype(np.float32)
    x[:4] = [0.0, 1.0, 0.5, 0.35]
    # the exact piecewise-linear map: matplotlib's segment data, and its 256-entry table's nodes
    np.testing.assert_allclose(np.asarray(F.jet_colormap(x)), ref_jet(x).T, atol=1e-6)
    nodes = np.linspace(0, 1, 256)
    np.testing.assert_allclose(np.asarray(F.jet_colormap(nodes)), jet(nodes)[:, :3], atol=1e-6)
    # quantised to 256 levels it is matplotlib.cm.jet itself
    np.testing.assert_allclose(np.asarray(F.jet_colormap(x, levels=256)), jet(x)[:, :3], atol=1e-6)
    # out-of-range values clip like matplotlib's under/over colours of jet
    np.testing.assert_allclose(np.asarray(F.jet_colormap(np.array([-1.0, 2.0]))),
                               ref_jet(np.array([0.0, 1.0])).T, atol=1e-7)
