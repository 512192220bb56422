"""audio.py: reading any libsndfile format to 16 kHz mono, and cutting 3 s segments."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from adarl_jax.data.audio import (AudioError, frame_power, iter_segments, load_audio, prepare_wave,
                                  segment, segment_count, speech_bounds)

EMODB = Path(__file__).resolve().parents[2] / "shared" / "data" / "emodb"


def sine(freq, seconds, rate, amp=0.5, phase=0.0):
    t = np.arange(int(round(seconds * rate))) / rate
    return amp * np.sin(2 * np.pi * freq * t + phase)


def peak_hz(wave, rate):
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.argmax(spec) * rate / len(wave)


def test_resampling_44k_stereo_keeps_frequency_and_amplitude(tmp_path):
    # left 0.6 and right 0.2 amplitude, same phase: the mono mix is a 0.4 amplitude sine
    left, right = sine(1000, 1.0, 44100, 0.6), sine(1000, 1.0, 44100, 0.2)
    path = tmp_path / "stereo44k.wav"
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="FLOAT")
    wave = load_audio(path, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == 16000  # 44100 samples -> exactly one second at 16 kHz
    assert abs(peak_hz(wave, 16000) - 1000) <= 1.0
    middle = wave[2000:-2000]  # away from the filter's edge effects
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.01)
    assert np.max(np.abs(middle)) == pytest.approx(0.4, rel=0.01)
    # and sample by sample it is the analytic sine at 16 kHz
    np.testing.assert_allclose(middle, sine(1000, 1.0, 16000, 0.4)[2000:-2000], atol=2e-3)


def test_resampling_8k_up_to_16k(tmp_path):
    path = tmp_path / "tel.wav"
    sf.write(path, sine(300, 0.5, 8000, 0.5), 8000, subtype="PCM_16")
    wave = load_audio(path, 16000)
    assert len(wave) == 8000
    assert abs(peak_hz(wave, 16000) - 300) <= 2.0


@pytest.mark.parametrize(
    "fmt,subtype,atol",
    [("WAV", "PCM_16", 1e-4), ("WAV", "PCM_24", 1e-6), ("WAV", "PCM_32", 1e-6), ("WAV", "FLOAT", 0),
     ("FLAC", "PCM_16", 1e-4)],
)
def test_formats_read_back_exactly(tmp_path, fmt, subtype, atol):
    x = sine(440, 0.3, 16000, 0.7).astype(np.float32)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, x, 16000, format=fmt, subtype=subtype)
    np.testing.assert_allclose(load_audio(path), x, atol=atol + 1e-7)


def test_ogg_vorbis_is_read(tmp_path):
    x = sine(440, 1.0, 16000, 0.5)
    path = tmp_path / "x.ogg"
    sf.write(path, x, 16000, format="OGG", subtype="VORBIS")
    wave = load_audio(path)
    assert abs(len(wave) - len(x)) < 200
    assert abs(peak_hz(wave, 16000) - 440) <= 2.0


def test_int16_values_are_scaled_to_unit_range(tmp_path):
    ints = np.array([0, 16384, -32768, 32767] * 100, np.int16)
    path = tmp_path / "ints.wav"
    sf.write(path, ints, 16000, subtype="PCM_16")
    np.testing.assert_allclose(load_audio(path)[:4], [0, 0.5, -1.0, 32767 / 32768])


def _assert_error(path, words, **kw):
    with pytest.raises(AudioError) as info:
        load_audio(path, **kw)
    assert str(path) in str(info.value)
    assert any(w in str(info.value) for w in words), str(info.value)
    return info.value


def test_errors_name_the_file_and_the_reason(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(200)))
    _assert_error(corrupt, ["corrupt", "unreadable"])

    text = tmp_path / "notes.wav"
    text.write_text("this is not audio at all")
    _assert_error(text, ["corrupt", "unreadable"])

    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0,), np.float32), 16000)
    _assert_error(empty, ["empty"])

    zero_bytes = tmp_path / "zero_bytes.wav"
    zero_bytes.write_bytes(b"")
    _assert_error(zero_bytes, ["corrupt", "unreadable", "empty"])

    nan = tmp_path / "nan.wav"
    x = np.zeros(4000, np.float32)
    x[1234] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    assert "1 NaN" in str(_assert_error(nan, ["NaN"]))

    inf = tmp_path / "inf.wav"
    x[1234] = np.inf
    sf.write(inf, x, 16000, subtype="FLOAT")
    _assert_error(inf, ["infinite"])

    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(100, np.float32), 16000)
    _assert_error(short, ["too short"], min_samples=320)

    _assert_error(tmp_path / "absent.wav", ["no such file"])
    assert issubclass(AudioError, ValueError)


def test_too_short_is_judged_after_resampling(tmp_path):
    ok, short = tmp_path / "ok8k.wav", tmp_path / "short8k.wav"
    sf.write(ok, sine(200, 200 / 8000, 8000), 8000)  # 200 samples at 8 kHz = 400 at 16 kHz
    sf.write(short, sine(200, 150 / 8000, 8000), 8000)  # 150 -> 300 < 320
    assert len(load_audio(ok, 16000, min_samples=320)) == 400
    _assert_error(short, ["too short"], sample_rate=16000, min_samples=320)


@pytest.mark.parametrize("rate,channels", [(44100, 2), (8000, 1), (16000, 3), (16000, 1)])
def test_prepare_wave_is_load_audio_of_the_same_samples(tmp_path, rate, channels):
    rng = np.random.default_rng(rate + channels)
    samples = (0.3 * rng.normal(size=(int(0.7 * rate), channels))).astype(np.float32)
    sf.write(tmp_path / "x.wav", samples, rate, subtype="FLOAT")
    want = load_audio(tmp_path / "x.wav", 16000)
    for given in (samples, samples[:, 0] if channels == 1 else samples):
        got = prepare_wave(given, rate, 16000)
        assert got.dtype == np.float32 and got.ndim == 1
        np.testing.assert_array_equal(got, want)


def test_prepare_wave_rejects_what_load_audio_rejects():
    with pytest.raises(ValueError, match="samples,"):
        prepare_wave(np.zeros((2, 3, 4)), 16000)
    with pytest.raises(ValueError, match="empty waveform"):
        prepare_wave(np.zeros(0), 16000)
    with pytest.raises(ValueError, match="NaN or infinite"):
        prepare_wave(np.array([0.0, np.inf, 0.0] * 200), 16000)
    with pytest.raises(ValueError, match="too short: 300 samples at 16000 Hz"):
        prepare_wave(np.zeros(150), 8000, 16000, min_samples=320)
    assert len(prepare_wave(np.zeros(200), 8000, 16000, min_samples=320)) == 400


@pytest.mark.parametrize(
    "seconds,expected_lengths",
    [
        (2.5, [40000]),  # the only segment, kept although shorter than 3 s
        (3.0, [48000]),
        (6.5, [48000, 48000]),  # 0.5 s tail < min_tail 1 s: dropped
        (7.2, [48000, 48000, 19200]),  # 1.2 s tail: kept, zero-padded
        (7.0, [48000, 48000, 16000]),  # tail of exactly min_tail: kept
        (0.5, [8000]),
    ],
)
def test_segment_counts_lengths_and_padding(seconds, expected_lengths):
    rate = 16000
    n = int(round(seconds * rate))
    wave = np.arange(1, n + 1, dtype=np.float32)  # nonzero everywhere, so padding is visible
    segs, lengths, starts = segment(wave, rate, segment_s=3.0, min_tail_s=1.0)
    assert segs.shape == (len(expected_lengths), 48000) and segs.dtype == np.float32
    assert lengths.dtype == np.int32 and starts.dtype == np.float32
    assert lengths.tolist() == expected_lengths
    np.testing.assert_allclose(starts, 3.0 * np.arange(len(expected_lengths)))
    for i, length in enumerate(expected_lengths):
        np.testing.assert_array_equal(segs[i, :length], wave[i * 48000 : i * 48000 + length])
        assert not segs[i, length:].any()
    assert segment_count(n, rate, 3.0, 1.0) == len(expected_lengths)


@pytest.mark.parametrize(
    "seconds,hop_s,expected_starts,expected_lengths",
    [
        # whole segments every 1 s while they fit (0-3, 1-4), then the partial one from 2 s:
        # it holds 4-4.5 s, which no whole segment covers, and is 2.5 s >= min_tail
        (4.5, 1.0, [0, 1, 2], [48000, 48000, 40000]),
        (4.0, 1.0, [0, 1], [48000, 48000]),  # 1-4 s ends at the end: nothing left uncovered
        (4.2, 1.5, [0, 1.5], [48000, 43200]),  # the partial from 1.5 s holds 3-4.2 s
        (2.0, 0.5, [0], [32000]),  # shorter than a segment: one, padded
        (3.1, 2.5, [0], [48000]),  # 0.6 s from 2.5 s < min_tail 1 s: dropped
        (7.2, 3.0, [0, 3, 6], [48000, 48000, 19200]),  # hop = segment: the plain cut
    ],
)
def test_overlapping_segments_start_every_hop_and_cover_the_wave(seconds, hop_s, expected_starts,
                                                                 expected_lengths):
    rate = 16000
    n = int(round(seconds * rate))
    wave = np.arange(1, n + 1, dtype=np.float32)
    segs, lengths, starts = segment(wave, rate, 3.0, 1.0, hop_s=hop_s)
    np.testing.assert_allclose(starts, expected_starts)
    assert lengths.tolist() == expected_lengths
    for seg, length, start in zip(segs, lengths, starts):
        first = int(round(start * rate))
        np.testing.assert_array_equal(seg[:length], wave[first:first + length])
        assert not seg[length:].any()
    assert segment_count(n, rate, 3.0, 1.0, hop_s=hop_s) == len(expected_starts)


def test_overlapping_cuts_have_the_properties_that_define_them():
    """Over random lengths, hops and tails (at 100 Hz): starts every hop from 0; every segment
    but the last is whole; the segments cover the wave but for an uncovered end shorter than
    the minimum tail; the last one holds samples no earlier one holds; never an empty cut."""
    rng = np.random.default_rng(7)
    for _ in range(500):
        n, seg, hop, tail = (int(rng.integers(1, 1000)), int(rng.integers(5, 300)), 0, 0)
        hop, tail = int(rng.integers(1, seg + 1)), int(rng.integers(1, seg + 1))
        _, lengths, starts = segment(np.ones(n, np.float32), 100, seg / 100, tail / 100,
                                     hop_s=hop / 100)
        starts = np.rint(starts * 100).astype(int)
        assert len(starts) >= 1 and list(starts) == [k * hop for k in range(len(starts))]
        assert all(length == seg for length in lengths[:-1])
        assert all(s + length <= n for s, length in zip(starts, lengths))
        ends = starts + lengths
        assert n - ends.max() < tail or ends.max() == n  # what is left uncovered is a short tail
        if len(starts) > 1:
            assert ends[-1] > ends[-2]  # the last segment adds samples
        assert segment_count(n, 100, seg / 100, tail / 100, hop_s=hop / 100) == len(starts)


@pytest.mark.parametrize("hop_s", [0.0, 4.0, -1.0, 1e-6])
def test_segment_rejects_a_hop_outside_one_sample_to_one_segment(hop_s):
    if hop_s == 0.0:  # 0 means no overlap, and is accepted
        assert len(segment(np.ones(16000 * 7, np.float32), 16000, 3.0, 1.0, hop_s)[0]) == 3
        return
    with pytest.raises(ValueError, match="hop_s"):
        segment(np.ones(16000 * 7, np.float32), 16000, 3.0, 1.0, hop_s)


def test_frame_power_is_the_mean_square_of_each_frame_the_last_partial():
    x = np.random.default_rng(2).standard_normal(1000)
    ref = [np.mean(x[i:i + 400] ** 2) for i in range(0, 1000, 400)]
    np.testing.assert_allclose(frame_power(x, 400), ref, rtol=1e-12)


def _speech_in_silence(lead_s, speech_s, trail_s, rate=16000, floor=1e-4):
    """Quiet noise (about -80 dB re the tone), a tone, quiet noise."""
    rng = np.random.default_rng(4)
    n = [int(round(s * rate)) for s in (lead_s, speech_s, trail_s)]
    wave = floor * rng.standard_normal(sum(n)).astype(np.float32)
    wave[n[0]:n[0] + n[1]] += sine(220, speech_s, rate).astype(np.float32)
    return wave, n


def test_trim_cuts_the_silence_at_both_ends_and_keeps_the_file_time():
    wave, (lead, speech, _) = _speech_in_silence(0.7, 2.0, 0.5)
    frame = 400  # 25 ms at 16 kHz
    start, end = speech_bounds(frame_power(wave, frame), frame, len(wave), 40.0)
    assert lead - frame < start <= lead and lead + speech <= end < lead + speech + frame
    segs, lengths, starts = segment(wave, 16000, 3.0, 1.0, trim_db=40.0)
    assert lengths.tolist() == [end - start] and starts[0] == pytest.approx(start / 16000)
    np.testing.assert_array_equal(segs[0, :end - start], wave[start:end])
    # untrimmed: the 3.2 s file gives 0-3 s and drops the 0.2 s tail
    assert segment(wave, 16000, 3.0, 1.0)[1].tolist() == [48000]


def test_trim_keeps_all_of_a_silent_wave_and_at_least_min_samples_of_a_click():
    assert speech_bounds(frame_power(np.zeros(8000), 400), 400, 8000, 40.0) == (0, 8000)
    click = np.zeros(16000, np.float32)
    click[8000] = 1.0
    start, end = speech_bounds(frame_power(click, 400), 400, 16000, 40.0, min_samples=640)
    assert end - start == 640 and start <= 8000 < end
    assert speech_bounds(frame_power(click, 400), 400, 16000, 0.0) == (0, 16000)


def test_segment_rejects_non_mono():
    with pytest.raises(ValueError):
        segment(np.zeros((2, 100), np.float32), 16000)


def _write_long(path, seconds, rate, channels):
    rng = np.random.default_rng(0)
    x = 0.1 * rng.standard_normal((int(seconds * rate), channels)) + sine(700, seconds, rate, 0.3)[:, None]
    sf.write(path, x, rate, subtype="FLOAT")


@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2), (22050, 1)])
def test_iter_segments_matches_whole_file_reading(tmp_path, rate, channels):
    path = tmp_path / f"long{rate}.wav"
    _write_long(path, 7.2, rate, channels)
    segs, lengths, starts = segment(load_audio(path), 16000)
    streamed = list(iter_segments(path, block_s=1.3))  # many block edges inside each segment
    assert len(streamed) == len(segs) == 3
    _assert_same_segments(streamed, segs, lengths, starts)


@pytest.mark.parametrize("seconds,hop_s", [(7.2, 1.0), (7.2, 0.7), (4.5, 1.0), (2.0, 0.5),
                                           (9.0, 3.0)])
def test_iter_segments_overlapping_matches_whole_file_reading(tmp_path, seconds, hop_s):
    path = tmp_path / "long.wav"
    _write_long(path, seconds, 22050, 1)
    segs, lengths, starts = segment(load_audio(path), 16000, 3.0, 1.0, hop_s=hop_s)
    streamed = list(iter_segments(path, block_s=1.3, hop_s=hop_s))
    assert len(streamed) == len(segs)
    _assert_same_segments(streamed, segs, lengths, starts)


def test_iter_segments_trimmed_matches_whole_file_reading(tmp_path):
    wave, _ = _speech_in_silence(1.3, 4.1, 0.9, rate=22050)
    path = tmp_path / "padded.wav"
    sf.write(path, wave, 22050, subtype="FLOAT")
    for hop_s in (0.0, 1.0):
        segs, lengths, starts = segment(load_audio(path), 16000, 3.0, 1.0, hop_s=hop_s,
                                        trim_db=40.0)
        streamed = list(iter_segments(path, block_s=1.3, hop_s=hop_s, trim_db=40.0))
        assert len(streamed) == len(segs) and starts[0] == pytest.approx(1.3, abs=0.03)
        _assert_same_segments(streamed, segs, lengths, starts)


def _assert_same_segments(streamed, segs, lengths, starts):
    for (s, length, start), ref, ref_len, ref_start in zip(streamed, segs, lengths, starts):
        assert length == ref_len and start == pytest.approx(ref_start)
        np.testing.assert_allclose(s, ref, atol=1e-5)


def test_iter_segments_reads_in_blocks_not_whole(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    _write_long(path, 10.0, 16000, 1)
    biggest = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *a, **kw):
        out = real_read(self, frames, *a, **kw)
        biggest.append(len(out))
        return out

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    assert len(list(iter_segments(path, block_s=2.0))) == 4  # 3 full + a 1 s tail
    assert max(biggest) <= 2 * 16000


def test_iter_segments_raises_on_nan_late_in_file(tmp_path):
    path = tmp_path / "late_nan.wav"
    x = sine(300, 8.0, 16000).astype(np.float32)
    x[7 * 16000] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN") as info:
        list(iter_segments(path, block_s=2.0))
    assert str(path) in str(info.value)


@pytest.mark.skipif(not EMODB.exists(), reason="EmoDB not present")
def test_real_emodb_file_reads_at_16k():
    path = EMODB / "wav" / "03a01Fa.wav"
    wave = load_audio(path)
    assert len(wave) / 16000 == pytest.approx(1.89825, abs=1e-4)  # SOURCE.md duration
    assert 0.01 < np.abs(wave).max() <= 1.0


def _truncate(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("AIFF", "aiff"), ("W64", "w64")])
def test_truncated_file_gets_a_warning_from_both_readers(tmp_path, fmt, ext):
    path = tmp_path / f"cut.{ext}"
    sf.write(path, sine(300, 2.0, 16000, 0.5), 16000, format=fmt, subtype="PCM_16")
    whole = []
    load_audio(path, warnings=whole)
    assert whole == []  # the intact file is not suspect
    _truncate(path)
    loaded, streamed = [], []
    wave = load_audio(path, warnings=loaded)
    list(iter_segments(path, warnings=streamed))
    assert len(wave) < 16000 * 1.01  # about half of the 2 s is there
    assert len(loaded) == 1 and loaded[0].startswith("truncated") and loaded == streamed
    assert "2.00 s claimed" in loaded[0]


def test_silent_and_near_silent_files_get_warnings_and_quiet_speech_does_not(tmp_path):
    rng = np.random.default_rng(0)
    cases = {"zero": np.zeros(16000), "hiss": 1e-4 * rng.normal(size=16000),  # about -80 dBFS
             "quiet": sine(300, 1.0, 16000, 0.005)}  # RMS 0.0035: -49 dBFS, kept quietly
    found = {}
    for name, x in cases.items():
        sf.write(tmp_path / f"{name}.wav", x.astype(np.float32), 16000, subtype="FLOAT")
        loaded, streamed = [], []
        load_audio(tmp_path / f"{name}.wav", warnings=loaded)
        list(iter_segments(tmp_path / f"{name}.wav", warnings=streamed))
        assert loaded == streamed
        found[name] = loaded
    assert found["zero"] == ["silent: every sample is zero"]
    assert len(found["hiss"]) == 1 and found["hiss"][0].startswith("near-silent: RMS level -80")
    assert found["quiet"] == []


def test_level_warning_threshold_is_minus_60_dbfs():
    from adarl_jax.data.audio import SILENCE_DBFS, level_warning

    n = 1000
    just_below = (10 ** (SILENCE_DBFS / 20) * 0.99) ** 2 * n  # sum of squares at RMS -60.09 dBFS
    just_above = (10 ** (SILENCE_DBFS / 20) * 1.01) ** 2 * n
    assert level_warning(0.01, just_below, n).startswith("near-silent")
    assert level_warning(0.01, just_above, n) is None
    assert level_warning(0.0, 0.0, n) == "silent: every sample is zero"


def _rms_dbfs(samples):
    x = np.asarray(samples, np.float64)
    return 20 * np.log10(np.sqrt(np.mean(x * x)))


@pytest.mark.parametrize("trim_db", [0.0, 40.0])
def test_level_scales_the_kept_recording_to_the_rms_asked_for(tmp_path, trim_db):
    """data.level_dbfs: the (trimmed) recording's RMS over its real samples is the level asked
    for, whatever its recorded level, in memory and streamed alike."""
    wave, _ = _speech_in_silence(1.3, 4.1, 0.9, rate=22050)
    for gain in (0.05, 1.0):
        path = tmp_path / f"g{gain}.wav"
        sf.write(path, gain * wave, 22050, subtype="FLOAT")
        whole, n, _ = segment(load_audio(path), 16000, 10.0, 1.0, trim_db=trim_db,
                              level_dbfs=-25.0)  # one segment holds the whole kept recording
        assert _rms_dbfs(whole[0][:n[0]]) == pytest.approx(-25.0, abs=1e-3)
        segs, lengths, starts = segment(load_audio(path), 16000, 3.0, 1.0, trim_db=trim_db,
                                        level_dbfs=-25.0)
        streamed = list(iter_segments(path, block_s=1.3, trim_db=trim_db, level_dbfs=-25.0))
        assert len(streamed) == len(segs)
        _assert_same_segments(streamed, segs, lengths, starts)
        plain = segment(load_audio(path), 16000, 3.0, 1.0, trim_db=trim_db)
        np.testing.assert_array_equal(plain[1], lengths)  # the cut is the level's business alone
        ratio = segs[0][:lengths[0]] / np.where(plain[0][0][:lengths[0]] == 0, 1, plain[0][0][:lengths[0]])
        nonzero = plain[0][0][:lengths[0]] != 0
        assert np.ptp(ratio[nonzero]) < 1e-4 * np.abs(ratio[nonzero]).max()  # one gain


def test_level_of_a_cut_between_frame_edges_is_measured_on_its_samples(tmp_path):
    """A click shorter than min_samples widens the cut off the 25 ms frame edges: the streamed
    reader then reads the kept samples once more for their level, equal to the in-memory one."""
    rate = 16000
    wave = np.zeros(rate, np.float64)
    wave[8010:8030] = 0.5  # 20 samples of sound in one 400-sample frame: the cut is widened
    # to min_samples = 1000, whose end falls inside a frame
    path = tmp_path / "click.wav"
    sf.write(path, wave, rate, subtype="FLOAT")
    segs, lengths, starts = segment(load_audio(path), rate, 3.0, 1.0, trim_db=40.0,
                                    min_samples=1000, level_dbfs=-30.0)
    streamed = list(iter_segments(path, block_s=0.3, trim_db=40.0, min_samples=1000,
                                  level_dbfs=-30.0))
    assert lengths[0] == 1000 and _rms_dbfs(segs[0][:1000]) == pytest.approx(-30.0, abs=1e-3)
    _assert_same_segments(streamed, segs, lengths, starts)


def test_a_positive_level_is_refused_by_name():
    from adarl_jax.config import load_config

    with pytest.raises(ValueError, match=r"data.level_dbfs=3"):
        load_config("smoke", ["data.level_dbfs=3.0"])


def test_a_near_silent_recording_is_not_raised_to_the_level():
    """Below SILENCE_DBFS a recording is noise (and warned about): its level stays as recorded
    rather than its noise floor being raised into speech levels."""
    rng = np.random.default_rng(1)
    quiet = (1e-4 * rng.standard_normal(16000)).astype(np.float32)  # about -80 dBFS
    segs, lengths, _ = segment(quiet, 16000, 3.0, 1.0, level_dbfs=-25.0)
    np.testing.assert_array_equal(segs[0][:lengths[0]], quiet)
    loud = 0.1 * quiet / 1e-4
    segs, lengths, _ = segment(loud, 16000, 3.0, 1.0, level_dbfs=-25.0)
    assert _rms_dbfs(segs[0][:lengths[0]]) == pytest.approx(-25.0, abs=1e-3)
