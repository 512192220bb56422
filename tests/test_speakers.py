"""Speaker statistics at inference (adarl_jax.inference.speakers) and the warnings of inputs the model
cannot read as trained (adarl_jax.inference.input_checks): a file's output never depends on unrelated
files of its call; who speaks is said, not guessed; short, band-limited and repeated inputs
are flagged in their rows."""

import csv
import os

import jax
import numpy as np
import pytest
import soundfile as sf

from adarl_jax import cli
from adarl_jax.config import input_shape, load_config
from adarl_jax.data.dataset import compute_features, group_statistics, speaker_statistics
from adarl_jax.data.frontend import FrontendSpec
from adarl_jax.inference.input_checks import band_warning, empty_bands
from adarl_jax.model import build_model
from adarl_jax.inference.model_folder import FORMAT, FORMAT_VERSION, write_model_folder
from adarl_jax.inference.predict import Predictor
from adarl_jax.inference.speakers import MIN_SPEAKER_S, speaker_groups
from conftest import SR, tiny_config, tone


def speaker_config():
    c = tiny_config()
    c.frontend.normalize = "speaker"
    return c


@pytest.fixture(scope="module")
def variables():
    config = speaker_config()
    x = np.zeros((1, *input_shape(config)), np.float32)
    return jax.device_get(build_model(config).init(jax.random.key(3), x, train=False))


@pytest.fixture(scope="module")
def predictor(variables):
    return Predictor(speaker_config(), variables, buckets=(1, 8))


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Two speakers in two folders: a (3 files, its own pitch and level) and b (2 files)."""
    root = tmp_path_factory.mktemp("speakers")
    files = {}
    for spk, base, gain in (("a", 180.0, 1.0), ("b", 420.0, 0.2)):
        (root / spk).mkdir()
        for j, seconds in enumerate((2.0, 4.5, 3.5) if spk == "a" else (5.0, 2.5)):
            path = root / spk / f"{j}.wav"
            sf.write(path, gain * tone(seconds, base * (1 + 0.3 * j), seed=j), SR)
            files[f"{spk}{j}"] = str(path)
    return files


def probs(rec):
    return np.array(list(rec["probs"].values()))


def test_a_files_probabilities_do_not_depend_on_the_other_files_of_the_call(predictor, audio):
    alone = predictor.predict_files([audio["a0"]])[0]
    with_its_speaker = predictor.predict_files([audio["a0"], audio["a1"], audio["a2"]],
                                               speakers="file")[0]
    mixed = predictor.predict_files([audio["b0"], audio["a2"], audio["a0"], audio["b1"],
                                     audio["a1"]])[2]  # the default rule
    for rec in (with_its_speaker, mixed):
        np.testing.assert_allclose(probs(rec), probs(alone), atol=1e-6)
        assert rec["speaker"] == audio["a0"] and rec["speaker_s"] == alone["speaker_s"] == 2.0
    # said to share a speaker, the files share statistics, and the output moves with them
    pooled = predictor.predict_files([audio["a0"], audio["a1"], audio["a2"]], speakers="call")
    assert np.abs(probs(pooled[0]) - probs(alone)).max() > 1e-4
    # 2 + 4.5 + 3: a2's last 0.5 s is under the minimum segment, so no segment reads it
    assert [r["speaker"] for r in pooled] == ["call"] * 3 and pooled[0]["speaker_s"] == 9.5
    by_folder = predictor.predict_files([audio["b0"], audio["a0"], audio["a1"], audio["a2"]],
                                        speakers="folder")
    for got, want in zip(by_folder[1:], pooled):  # a's folder is a's files: the same groups
        np.testing.assert_allclose(probs(got), probs(want), atol=1e-6)
    labelled = predictor.predict_files([audio["a0"], audio["b0"], audio["a1"], audio["a2"]],
                                       speakers=["ann", "bob", "ann", "ann"])
    np.testing.assert_allclose(probs(labelled[0]), probs(pooled[0]), atol=1e-6)
    assert labelled[1]["speaker"] == "bob" and labelled[1]["speaker_s"] == 5.0


@pytest.mark.parametrize("hop_s", [0.0, 1.0])
def test_group_statistics_equal_the_training_statistics_of_the_same_files(audio, hop_s):
    """dataset.group_statistics (streamed, per input) against speaker_statistics over the
    features the training cache computes (compute_features), for two groups at once; the
    seconds are the files' own, however much overlapping segments repeat (hop 1 s)."""
    config = speaker_config()
    config.data.segment_hop_s = hop_s
    paths = [audio["a0"], audio["b0"], audio["a1"], audio["b1"]]
    groups = ["a", "b", "a", "b"]
    d = config.data
    from adarl_jax.data.audio import iter_segments
    from adarl_jax.data.feature_cache import cut_options

    sources = [lambda p=p: iter_segments(p, d.sample_rate, d.segment_s, d.min_tail_s,
                                         **cut_options(config)) for p in paths]
    got = group_statistics(sources, groups, config, batch_size=3)
    feats, index, _, frames = compute_features(paths, config, with_index=True, with_frames=True)
    want = speaker_statistics(feats, frames, np.array(groups)[index])
    for g in ("a", "b"):
        np.testing.assert_allclose(got[g][0], want[g][0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got[g][1], want[g][1], rtol=1e-6, atol=1e-6)
    assert got["a"][2] == pytest.approx(2.0 + 4.5) and got["b"][2] == pytest.approx(5.0 + 2.5)


def test_adapt_to_speaker_overrides_the_groups_until_forgotten(predictor, audio):
    pooled = predictor.predict_files([audio["a0"], audio["a1"], audio["a2"]], speakers="call")
    predictor.adapt_to_speaker([audio["a0"], audio["a1"], audio["a2"]])
    try:
        adapted = predictor.predict_files([audio["a0"]])[0]
    finally:
        predictor.adapt_to_speaker()
    np.testing.assert_allclose(probs(adapted), probs(pooled[0]), atol=1e-6)
    assert adapted["speaker"] == "adapt_to_speaker" and adapted["speaker_s"] == 9.5
    alone = predictor.predict_files([audio["a0"]])[0]
    assert alone["speaker"] == audio["a0"]


def test_a_group_under_the_minimum_is_warned(predictor, audio):
    short, = predictor.predict_files([audio["a0"]])  # 2 s alone
    assert MIN_SPEAKER_S > 2.0 and f"under the {MIN_SPEAKER_S:g} s minimum" in short["warning"]
    pooled = predictor.predict_files([audio["a0"], audio["a1"]], speakers="call")
    assert all(r["warning"] is None for r in pooled)  # 6.5 s


def test_predict_batch_matches_the_files_and_reads_channels(predictor, audio):
    waves = [sf.read(audio[k], dtype="float32")[0] for k in ("a0", "a1", "b0")]
    files = predictor.predict_files([audio[k] for k in ("a0", "a1", "b0")])
    batch = predictor.predict_batch(waves, SR)
    for got, want in zip(batch, files):
        np.testing.assert_allclose(probs(got), probs(want), atol=1e-5)
    assert [r["speaker"] for r in batch] == ["wave 0", "wave 1", "wave 2"]
    same = predictor.predict_batch(waves, SR, speakers=["x", "x", "y"])
    pooled = predictor.predict_files([audio["a0"], audio["a1"]], speakers="call")
    np.testing.assert_allclose(probs(same[0]), probs(pooled[0]), atol=1e-5)
    stereo = np.stack([waves[0], waves[0]])  # (channels, samples)
    np.testing.assert_allclose(probs(predictor.predict(stereo, SR, channels_first=True)),
                               probs(batch[0]), atol=1e-5)
    np.testing.assert_allclose(probs(predictor.predict(stereo.T, SR)), probs(batch[0]), atol=1e-5)
    with pytest.raises(ValueError, match="channels_first=True"):
        predictor.predict(stereo, SR)
    with pytest.raises(ValueError, match=r"waveforms\[1\]: too short"):
        predictor.predict_batch([waves[0], np.zeros(10, np.float32)], SR)
    with pytest.raises(ValueError, match="2 labels for 3 recordings"):
        predictor.predict_batch(waves, SR, speakers=["x", "y"])


def test_short_clips_and_band_limited_recordings_are_flagged(predictor, tmp_path):
    sf.write(tmp_path / "half.wav", tone(0.5), SR)
    sf.write(tmp_path / "ok.wav", tone(2.0), SR)
    narrow = 4000  # the smoke front end's bins reach 3800 Hz: those above 2000 Hz are empty
    sf.write(tmp_path / "narrow.wav", tone(2.0, 300, sr=narrow), narrow)
    half, ok, band = predictor.predict_files([tmp_path / "half.wav", tmp_path / "ok.wav",
                                              tmp_path / "narrow.wav"], speakers="call")
    assert "short: 0.50 s, under the 1 s minimum segment; padded with silence to 3 s" in half["warning"]
    assert ok["warning"] is None and half["error"] is None and half["segments"] == 1
    assert band["warning"].startswith("band-limited: recorded at 4000 Hz, nothing above 2000 Hz")
    assert "(9 of 20 bands empty)" in band["warning"]  # bins 2200, 2400, ..., 3800 Hz
    rec = predictor.predict(tone(2.0, sr=narrow), narrow)
    assert "band-limited" in rec["warning"] and "short" not in rec["warning"]


def test_empty_band_count_of_the_default_recipe_at_8_khz():
    """quick: 80 HTK-mel bands up to 8 kHz; at 8 kHz the bands whose lower edge is at or above
    4 kHz are empty (a reference from the HTK formula, written out here)."""
    spec = FrontendSpec.from_config(load_config("quick"))
    mel = lambda f: 2595 * np.log10(1 + f / 700)
    lower = [700 * (10 ** (i * mel(8000) / 81 / 2595) - 1) for i in range(80)]
    want = sum(f >= 4000 for f in lower)
    assert 10 < want < 30 and empty_bands(8000, spec) == want  # mel: 18, not half
    assert empty_bands(16000, spec) == 0 and band_warning(16000, spec) is None
    assert f"({want} of 80 bands empty)" in band_warning(8000, spec)


def test_speaker_rules():
    paths = ["x/a.wav", "x/b.wav", "y/c.wav"]
    assert speaker_groups(paths, "file") == paths
    assert speaker_groups(paths, "call") == ["call"] * 3
    folders = speaker_groups(paths, "folder")
    assert folders[0] == folders[1] != folders[2] == os.path.abspath("y")
    assert speaker_groups(paths, "column", {"x/a.wav": "s1", "y/c.wav": "s1"}) == \
        ["s1", "x/b.wav", "s1"]
    with pytest.raises(ValueError, match="no input is a CSV"):
        speaker_groups(paths, "column", {})


@pytest.fixture(scope="module")
def model_folder(variables, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "m"
    write_model_folder(folder, speaker_config(), variables,
                       {"format": FORMAT, "format_version": FORMAT_VERSION}, "card\n")
    return folder


def test_cli_csv_speakers_stdout_and_rules(model_folder, audio, tmp_path, capsys):
    listing = tmp_path / "who.csv"
    listing.write_text(f"path,speaker\n{audio['a0']},ann\n{audio['a1']},ann\n{audio['b0']},bob\n")
    rc = cli.main(["predict", "--model", str(model_folder), str(listing), "--out", "-",
                   "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0 and "--speaker-from column" in err
    rows = list(csv.DictReader(out.splitlines()))
    assert [r["speaker"] for r in rows] == ["ann", "ann", "bob"]
    assert [float(r["speaker_s"]) for r in rows] == [6.5, 6.5, 5.0]
    rc = cli.main(["predict", "--model", str(model_folder), str(listing), "--out", "-",
                   "--speaker-from", "file", "--no-progress"])
    out, err = capsys.readouterr()
    assert [r["speaker"] for r in csv.DictReader(out.splitlines())] == \
        [audio["a0"], audio["a1"], audio["b0"]]
    rc = cli.main(["predict", "--model", str(model_folder), audio["a0"], "--out", "-",
                   "--speaker-from", "column", "--no-progress"])
    assert rc == 2 and "no input is a CSV with a speaker column" in capsys.readouterr().err


def test_the_waveform_artifact_standardises_with_its_calls_segments(predictor, audio, tmp_path):
    """export --input waveform of a speaker-normalised model: called with one file's segments
    it gives the file's probabilities under --speaker-from file (the mean over segments)."""
    from adarl_jax.data.audio import segment
    from adarl_jax.inference.export import export_predictor, load_exported

    meta = export_predictor(predictor, tmp_path / "w.jax", input="waveform", platforms=("cpu",))
    assert "one speaker, or one file" in meta["speaker_statistics"]
    exported, _ = load_exported(tmp_path / "w.jax")
    for key in ("a1", "b0"):
        wave, _ = sf.read(audio[key], dtype="float32")
        segs, lengths, _ = segment(wave, SR, predictor.segment_s, predictor.min_tail_s)
        got = np.asarray(exported.call(segs, lengths)).mean(axis=0)
        np.testing.assert_allclose(got, probs(predictor.predict_files([audio[key]])[0]),
                                   atol=1e-5)


def test_features_writes_what_the_model_sees(audio, tmp_path, capsys):
    """features with the speaker-normalised front end: each file standardised with its own
    statistics (zero mean, unit std per band and channel over its valid frames), the same
    alone or beside other files; --raw the front end's output before that."""
    over = ["--config", "smoke", "--config.frontend.normalize=speaker",
            "--config.data.max_utterances=0"]
    run = lambda *a: cli.main(["features", *over, *map(str, a)])
    assert run(audio["a1"], audio["b0"], "--out", tmp_path / "both.npy") == 0
    assert run(audio["b0"], "--out", tmp_path / "b.npy") == 0
    assert run(audio["b0"], "--raw", "--out", tmp_path / "raw.npy") == 0
    assert "--speaker-from file" in capsys.readouterr().out
    both, alone, raw = (np.load(tmp_path / f"{n}.npy") for n in ("both", "b", "raw"))
    config = load_config("smoke", ["frontend.normalize=speaker", "data.max_utterances=0"])
    want_raw, frames = compute_features([audio["b0"]], config, with_frames=True)
    np.testing.assert_allclose(raw, want_raw, atol=1e-6)
    np.testing.assert_allclose(both[-len(alone):], alone, atol=1e-5)  # b0's segments come last
    valid = np.concatenate([a[:, :n].transpose(0, 2, 1) for a, n in zip(alone, frames)],
                           axis=2)  # (F, C, every valid frame of the file)
    np.testing.assert_allclose(valid.mean(axis=2), 0.0, atol=1e-4)
    np.testing.assert_allclose(valid.std(axis=2), 1.0, atol=1e-2)


def test_an_unreadable_file_is_its_rows_error_and_left_out_of_its_groups_statistics(
        predictor, audio, tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    good = predictor.predict_files([audio["a0"], audio["a1"]], speakers="call")
    got = predictor.predict_files([audio["a0"], bad, audio["a1"], tmp_path / "gone.wav"],
                                  speakers="call")
    assert "corrupt" in got[1]["error"] and "no such file" in got[3]["error"]
    for g, w in zip((got[0], got[2]), good):
        np.testing.assert_allclose(probs(g), probs(w), atol=1e-6)
        assert g["speaker_s"] == w["speaker_s"] == 6.5
    alone, = predictor.predict_files([bad])  # a group with no readable audio
    assert "corrupt" in alone["error"] and alone["probs"] is None
