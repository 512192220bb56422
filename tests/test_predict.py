"""predict.py: batch inference from a trained workdir, bucketed jit, bad input, any format."""

import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import jax
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from adarl_jax.data.audio import segment_count
from adarl_jax.inference.predict import (CheckpointError, Predictor, expand_inputs, find_fold, plan_batches,
                               read_inputs, write_predictions)
from conftest import (EMODB, REPO, SR, TINY_OVERRIDES, make_corpus, result_of, shared_workdir, tone,
                      train_workdir)

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return shared_workdir(tmp_path_factory)


@pytest.fixture(scope="module")
def predictor(workdir):
    return Predictor.from_checkpoint(workdir, fold=0)


def cli_predict(workdir, *paths, out):
    """`adarl-jax predict` with fold 0 of workdir, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "adarl_jax.cli", "predict", "--checkpoint",
                           str(workdir), "--fold", "0", *map(str, paths), "--out", str(out),
                           "--no-progress"], cwd=REPO, env=dict(os.environ, XLA_FLAGS=""),
                          capture_output=True, text=True)


def test_file_probabilities_equal_the_training_reports(workdir, predictor):
    rows = result_of(workdir)["utterances"]
    got = predictor.predict_files([r["path"] for r in rows])
    for r, g in zip(rows, got):
        assert g["error"] is None and g["segments"] == r["segments"]
        np.testing.assert_allclose(list(g["probs"].values()), r["probs"], atol=2e-5)
        assert g["emotion"] == predictor.classes[int(np.argmax(r["probs"]))]


def test_weight_average_is_what_the_report_and_the_predictor_evaluate(tmp_path, monkeypatch):
    """optim.ema_decay: the fold's test report and a Predictor on its checkpoint both use the
    averaged weights (equal probabilities); the last weights would give others."""
    import adarl_jax.train.train_step

    workdir = train_workdir(tmp_path, folds="0", extra=["--config.optim.ema_decay=0.5"])
    rows = result_of(workdir)["utterances"]
    paths = [r["path"] for r in rows]
    got = Predictor.from_checkpoint(workdir, fold=0).predict_files(paths)
    reported = np.array([r["probs"] for r in rows])
    np.testing.assert_allclose([list(g["probs"].values()) for g in got], reported, atol=2e-5)
    monkeypatch.setattr(adarl_jax.train.train_step, "averaged_params", lambda params, opt_state: params)
    last = Predictor.from_checkpoint(workdir, fold=0).predict_files(paths)
    assert np.abs(np.array([list(g["probs"].values()) for g in last]) - reported).max() > 1e-3


def test_compilations_stay_at_the_bucket_count_over_mixed_lengths(workdir, tmp_path, caplog):
    p = Predictor.from_checkpoint(workdir, fold=0, buckets=(1, 8, 32))
    lengths = [0.3, 1.2, 2.9, 3.0, 4.5, 7.7, 13.0, 30.0, 61.0, 0.5, 9.1, 3.6]
    paths = []
    for i, s in enumerate(lengths):
        paths.append(tmp_path / f"a{i}.wav")
        sf.write(paths[-1], tone(s, 200 + 40 * i, seed=i), SR)
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING):
            stats = {}
            first = p.predict_files(paths, stats=stats)
            assert stats["batches"] > 3 and stats["segments"] > 32  # every bucket was needed
            assert p.compilations <= len(p.buckets)
            seen = p.compilations
            second = p.predict_files(list(reversed(paths))[:5] + paths[:3])
    finally:
        jax.config.update("jax_log_compiles", False)
    assert p.compilations == seen  # no new shapes, no new compilations
    compiles = [r for r in caplog.records if "Compiling" in r.getMessage()
                and "_waves_to_probs" in r.getMessage()]
    assert len(compiles) <= len(p.buckets)
    assert all(r["error"] is None for r in first + second)
    assert [r["segments"] for r in first] == [segment_count(int(s * SR), SR) for s in lengths]


def test_plan_batches_pads_only_the_last_batch():
    assert plan_batches(0, (1, 8, 32)) == []
    assert plan_batches(41, (1, 8, 32)) == [32, 8, 1]
    assert plan_batches(7, (1, 8, 32)) == [8]
    assert plan_batches(70, (1, 8, 32)) == [32, 32, 8]
    for n in range(1, 80):
        plan = plan_batches(n, (1, 8, 32))
        assert sum(plan) >= n and sum(plan[:-1]) < n


def test_corrupt_files_are_reported_and_the_rest_predicted(workdir, tmp_path):
    good = [tmp_path / "audio" / "good1.wav", tmp_path / "audio" / "sub" / "good2.flac"]
    good[1].parent.mkdir(parents=True)
    sf.write(good[0], tone(2.0), SR)
    sf.write(good[1], tone(4.0, 500), SR, format="FLAC")
    (tmp_path / "audio" / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    (tmp_path / "audio" / "empty.wav").write_bytes(b"")
    (tmp_path / "audio" / "notes.md").write_text("not audio, not picked up from a folder")
    sf.write(tmp_path / "nan.wav", np.full(SR, np.nan, np.float32), SR, subtype="FLOAT")
    sf.write(tmp_path / "audio" / "silent.wav", np.zeros(2 * SR, np.float32), SR)
    sf.write(tmp_path / "audio" / "cut.wav", tone(2.0), SR)
    whole = (tmp_path / "audio" / "cut.wav").read_bytes()
    (tmp_path / "audio" / "cut.wav").write_bytes(whole[:len(whole) // 2])
    (tmp_path / "list.txt").write_text("# extra files\nnan.wav\nmissing.wav\n\naudio/good1.wav\n")
    out = tmp_path / "preds.csv"
    res = cli_predict(workdir, tmp_path / "audio", tmp_path / "list.txt", out=out)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(out.open()))
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == {"good1.wav", "good2.flac", "corrupt.wav", "empty.wav", "nan.wav",
                            "missing.wav", "silent.wav", "cut.wav"}
    # good1 listed twice: a row each time, the same prediction, each row says so
    twice = [r for r in rows if Path(r["path"]).name == "good1.wav"]
    assert len(rows) == 9 and len(twice) == 2 and twice[0]["p_anger"] == twice[1]["p_anger"]
    assert all(r["warning"] == "given 2 times in this call: predicted once, a row each time" for r in twice)
    assert list(rows[0]) == ["path", "emotion", "p_anger", "p_happiness", "p_sadness", "p_neutral",
                             "duration_s", "segments", "speaker", "speaker_s", "error", "warning"]
    for name in ("good1.wav", "good2.flac", "silent.wav", "cut.wav"):
        r = by_name[name]
        assert r["error"] == "" and r["emotion"] in ("anger", "happiness", "sadness", "neutral")
        assert sum(float(r[f"p_{c}"]) for c in ("anger", "happiness", "sadness", "neutral")) == \
            pytest.approx(1.0, abs=1e-5)
    assert by_name["good2.flac"]["segments"] == "2" and float(by_name["good2.flac"]["duration_s"]) == 4.0
    assert "corrupt" in by_name["corrupt.wav"]["error"]
    assert "empty" in by_name["empty.wav"]["error"] or "corrupt" in by_name["empty.wav"]["error"]
    assert "NaN" in by_name["nan.wav"]["error"]
    assert "no such file" in by_name["missing.wav"]["error"]
    for name in ("corrupt.wav", "empty.wav", "nan.wav", "missing.wav"):
        assert by_name[name]["emotion"] == "" and by_name[name]["p_anger"] == ""
    # predicted, but never silently: the warning column says what is suspect
    assert by_name["silent.wav"]["warning"] == "silent: every sample is zero"
    assert by_name["cut.wav"]["warning"].startswith("truncated") and "2.00 s claimed" in \
        by_name["cut.wav"]["warning"]
    assert all(by_name[n]["warning"] == "" for n in by_name
               if n not in ("silent.wav", "cut.wav", "good1.wav"))
    assert all(r["speaker"] == r["speaker_s"] == "" for r in rows)  # no speaker statistics
    summary = res.stdout.strip().splitlines()[-1]
    assert summary.startswith("predicted 5 files, 4 failed") and "files/s" in summary
    assert "4 of 9 input(s) failed" in res.stderr and "4 of 9 file(s) have warnings" \
        in res.stderr


def test_predict_exits_2_when_every_input_fails(workdir, tmp_path):
    out = tmp_path / "preds.csv"
    res = cli_predict(workdir, tmp_path / "missing.wav", tmp_path / "gone.flac", out=out)
    assert res.returncode == 2, res.stderr
    assert "every input failed (2 of 2" in res.stderr and "Traceback" not in res.stderr
    assert [r["error"] != "" for r in csv.DictReader(out.open())] == [True, True]


def test_non_finite_probabilities_are_an_error_not_a_result(predictor, tmp_path):
    broken = jax.tree.map(lambda x: np.full_like(x, np.nan), jax.device_get(predictor.variables))
    diverged = Predictor(predictor.config, broken, buckets=(1, 8))
    sf.write(tmp_path / "a.wav", tone(2.0), SR)
    (rec,) = diverged.predict_files([tmp_path / "a.wav"], timeline=True)
    assert rec["probs"] is None and rec["emotion"] is None and rec["timeline"] == []
    assert "non-finite" in rec["error"]
    with pytest.raises(ValueError, match="non-finite"):
        diverged.predict(tone(2.0), SR)
    assert predictor.predict(np.zeros(SR, np.float32), SR)["warning"].startswith("silent")
    assert predictor.predict(tone(2.0), SR)["warning"] is None


def test_json_output_and_timeline_of_a_long_file_with_bounded_memory(predictor, tmp_path):
    path = tmp_path / "long.wav"
    minutes = 10
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for i in range(minutes * 2):  # written in 30 s pieces
            f.write(tone(30.0, 150 + 10 * i, seed=i))
    decoded_bytes = minutes * 60 * SR * 4  # the whole file as float32: 38 MB
    predictor.predict_files([path], timeline=True)  # compile outside the measurement
    tracemalloc.start()
    try:
        rec, = predictor.predict_files([path], timeline=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Reading it whole would hold >= 38 MB; streaming holds a 30 s block or two (2 MB each)
    # and the largest batch's waves (32 x 3 s, 6 MB), whatever the file's length.
    assert peak < decoded_bytes / 2, f"peak {peak / 2**20:.1f} MiB"
    assert rec["error"] is None and rec["segments"] == 200 and rec["duration_s"] == 600.0
    starts = [s["start_s"] for s in rec["timeline"]]
    assert starts == pytest.approx([3.0 * i for i in range(200)])
    seg = np.array([list(s["probs"].values()) for s in rec["timeline"]])
    np.testing.assert_allclose(seg.mean(axis=0), list(rec["probs"].values()), atol=1e-5)

    out = tmp_path / "p.json"
    write_predictions([rec], out, predictor.classes, timeline=True)
    got, = json.loads(out.read_text())
    assert {"path", "emotion", "p_anger", "p_neutral", "duration_s", "segments", "error"} <= set(got)
    assert len(got["timeline"]) == 200 and got["timeline"][5]["start_s"] == 15.0
    out_csv = tmp_path / "p.csv"
    write_predictions([rec], out_csv, predictor.classes, timeline=True)
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 201 and rows[0]["start_s"] == "" and rows[2]["start_s"] == "3.0"


def _real_or_synthetic(tmp_path) -> Path:
    if (EMODB / "wav" / "03a01Wa.wav").exists():
        return EMODB / "wav" / "03a01Wa.wav"
    path = tmp_path / "synthetic.wav"
    sf.write(path, tone(2.3, 220), SR, subtype="PCM_16")
    return path


def test_44k_stereo_flac_and_24bit_wav_match_the_16k_mono_original(predictor, tmp_path):
    original = _real_or_synthetic(tmp_path)
    x, sr = sf.read(original, dtype="float64")
    assert sr == SR and x.ndim == 1
    up = resample_poly(x, 441, 160)  # 16 kHz -> 44.1 kHz
    # Unequal channels whose mono mix is up / 2: the spectrogram is z-scored, so the gain
    # does not matter (up to the log floor).
    stereo = np.stack([0.6 * up, 0.4 * up], axis=1)
    sf.write(tmp_path / "x44.flac", stereo, 44100, subtype="PCM_16")
    sf.write(tmp_path / "x44_24.wav", stereo, 44100, subtype="PCM_24")
    sf.write(tmp_path / "x16_24.wav", x, SR, subtype="PCM_24")
    ref, *others = predictor.predict_files([original, tmp_path / "x44.flac",
                                            tmp_path / "x44_24.wav", tmp_path / "x16_24.wav"])
    p_ref = np.array(list(ref["probs"].values()))
    for o in others:
        assert o["error"] is None and o["segments"] == ref["segments"]
        np.testing.assert_allclose(list(o["probs"].values()), p_ref, atol=2e-3)
    # ... and the same numbers through the in-memory API at 44.1 kHz
    api = predictor.predict(stereo, 44100)
    np.testing.assert_allclose(list(api["probs"].values()), p_ref, atol=2e-3)
    # the tolerance is tight enough to tell files apart: a different recording differs more
    other = predictor.predict(tone(2.0, 900), SR)
    assert np.abs(np.array(list(other["probs"].values())) - p_ref).max() > 5e-3


def test_waveform_api(predictor, tmp_path):
    wave = tone(7.0, 260)
    sf.write(tmp_path / "w.wav", wave, SR, subtype="FLOAT")
    from_file, = predictor.predict_files([tmp_path / "w.wav"], timeline=True)
    rec = predictor.predict(wave, SR, timeline=True)
    assert set(rec) == {"emotion", "probs", "duration_s", "segments", "speaker", "speaker_s",
                        "error", "warning", "timeline"}
    assert rec["segments"] == 3 and rec["duration_s"] == 7.0  # 3 + 3 + a 1 s tail
    np.testing.assert_allclose(list(rec["probs"].values()), list(from_file["probs"].values()),
                               atol=1e-6)
    assert [s["duration_s"] for s in rec["timeline"]] == [3.0, 3.0, 1.0]
    with pytest.raises(ValueError, match="too short"):
        predictor.predict(np.zeros(10, np.float32), SR)
    with pytest.raises(ValueError, match="NaN"):
        predictor.predict(np.full(SR, np.nan), SR)


def test_fold_all_is_the_mean_over_folds(workdir):
    path = result_of(workdir, 1)["utterances"][0]["path"]
    one = lambda fold: Predictor.from_checkpoint(workdir, fold=fold, buckets=(1,))
    p0 = one(0).predict_files([path])[0]["probs"]
    p1 = one(1).predict_files([path])[0]["probs"]
    both = one("all")
    assert both.n_models == 2
    got = both.predict_files([path])[0]["probs"]
    for c in got:
        assert got[c] == pytest.approx((p0[c] + p1[c]) / 2, abs=1e-5)


def test_checkpoint_errors_name_what_is_wrong(workdir, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        Predictor.from_checkpoint(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="not a trained workdir"):
        Predictor.from_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"holds 2 folds \[0 \(s1\), 1 \(s2\)\].*--fold"):
        Predictor.from_checkpoint(workdir)
    with pytest.raises(FileNotFoundError, match="no fold 7; trained folds"):
        Predictor.from_checkpoint(workdir, fold=7)
    with pytest.raises(FileNotFoundError, match="no trained folds of variant 'backbone'"):
        Predictor.from_checkpoint(workdir, variant="backbone")
    # a fold folder names its variant and fold itself
    fold_dir = next((workdir / "adarl").glob("fold_01_*"))
    ref, = find_fold(fold_dir)
    assert (ref.variant, ref.fold, ref.finished) == ("adarl", 1, True)
    assert [r.fold for r in find_fold(workdir / "adarl", fold="all")] == [0, 1]

    # the same checkpoint under a config with another model width
    other = tmp_path / "other"
    shutil.copytree(workdir / "adarl" / fold_dir.name, other / "adarl" / fold_dir.name)
    # without the fold's own config.json (which would win), the workdir's is used
    (other / "adarl" / fold_dir.name / "config.json").unlink(missing_ok=True)
    config = json.loads((workdir / "config.json").read_text())
    config["model"]["hidden"] = 16
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"not trained with the config .*model.hidden=16.*"
                                              r"params/\w+/head/fc1/\w+: checkpoint"):
        Predictor.from_checkpoint(other)
    # ... and filed under another variant
    shutil.move(other / "adarl", other / "backbone")
    config["model"]["hidden"] = 8
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="not in the config's model"):
        Predictor.from_checkpoint(other)
    # the CLI says it in one line, exit code 2
    res = subprocess.run([sys.executable, "-m", "adarl_jax.cli", "predict", "--checkpoint",
                          str(tmp_path / "nowhere"), "x.wav", "--out", str(tmp_path / "p.csv")],
                         cwd=REPO, capture_output=True, text=True, env=dict(os.environ, XLA_FLAGS=""))
    assert res.returncode == 2 and "nowhere: no such file" in res.stderr


def test_expand_inputs(tmp_path):
    for name in ("b/2.wav", "b/c/3.FLAC", "a.wav", "b/readme.txt", "b/1.ogg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "list.lst").write_text("# again:\na.wav\n\n/abs/x.wav\n")
    (tmp_path / "who.csv").write_text("path,speaker\nb/1.ogg,ann\n/abs/y.wav,\n")
    got = read_inputs([tmp_path / "a.wav", tmp_path / "b", tmp_path / "list.lst",
                       tmp_path / "who.csv"])
    rel = [os.path.relpath(p, tmp_path) if not p.startswith("/abs") else p for p in got.paths]
    # a repeated path is kept: predict gives it a row each time (with a warning)
    assert rel == ["a.wav", "b/1.ogg", "b/2.wav", "b/c/3.FLAC", "a.wav", "/abs/x.wav", "b/1.ogg",
                   "/abs/y.wav"]
    assert got.speakers == {str(tmp_path / "b" / "1.ogg"): "ann"}  # the folder's spelling too
    assert expand_inputs([tmp_path / "list.lst"]) == [str(tmp_path / "a.wav"), "/abs/x.wav"]
    (tmp_path / "bad.csv").write_text("file,speaker\na.wav,ann\n")
    with pytest.raises(ValueError, match="bad.csv: a CSV input needs a header with a 'path'"):
        read_inputs([tmp_path / "bad.csv"])
    (tmp_path / "two.csv").write_text("path,speaker\na.wav,ann\na.wav,bob\n")
    with pytest.raises(ValueError, match="two speakers, 'ann' and 'bob'"):
        read_inputs([tmp_path / "two.csv"])


def test_a_file_failing_midway_is_reported_and_its_neighbours_are_not_disturbed(predictor, tmp_path):
    late_nan = tone(70.0)
    late_nan[65 * SR] = np.nan  # in the third 30 s block: some segments are already queued
    sf.write(tmp_path / "late_nan.wav", late_nan, SR, subtype="FLOAT")
    sf.write(tmp_path / "a.wav", tone(5.0, 400), SR)
    sf.write(tmp_path / "b.wav", tone(2.0, 700), SR)
    alone = predictor.predict_files([tmp_path / "a.wav", tmp_path / "b.wav"])
    a, bad, b = predictor.predict_files([tmp_path / "a.wav", tmp_path / "late_nan.wav",
                                         tmp_path / "b.wav"])
    assert "NaN" in bad["error"] and bad["probs"] is None and bad["emotion"] is None
    assert bad["duration_s"] == 70.0
    for got, want in zip((a, b), alone):
        assert got["error"] is None
        np.testing.assert_allclose(list(got["probs"].values()), list(want["probs"].values()),
                                   atol=1e-6)


def test_speaker_normalised_model_predicts_what_training_reported(tmp_path):
    """frontend.normalize='speaker': the Predictor standardises with the speaker's statistics
    (here all of the test speaker's files, as training did) and matches the fold's report."""
    workdir = train_workdir(tmp_path, folds="0", extra=["--config.frontend.normalize=speaker"])
    rows = result_of(workdir)["utterances"]
    paths = [r["path"] for r in rows]
    predictor = Predictor.from_checkpoint(workdir, fold=0)
    assert predictor.uses_speaker_norm
    got = predictor.predict_files(paths, speakers="call")  # the inputs taken as one speaker
    for r, g in zip(rows, got):
        np.testing.assert_allclose(list(g["probs"].values()), r["probs"], atol=2e-5)
    predictor.adapt_to_speaker(paths[:2])  # other statistics, other probabilities
    moved = predictor.predict_files(paths)
    assert max(abs(np.array(list(a["probs"].values())) - list(b["probs"].values())).max()
               for a, b in zip(got, moved)) > 1e-4
    from adarl_jax.inference.export import export_predictor


def test_utterance_normalised_model_predicts_what_training_reported_file_by_file(tmp_path):
    """frontend.normalize='utterance': every recording standardised by itself, in training
    and in the Predictor, whatever groups the caller names: alone, in one call, or as one
    speaker, a file's probabilities are the fold's reported ones."""
    workdir = train_workdir(tmp_path, folds="0", extra=["--config.frontend.normalize=utterance"])
    rows = result_of(workdir)["utterances"]
    paths = [r["path"] for r in rows]
    predictor = Predictor.from_checkpoint(workdir, fold=0)
    assert predictor.uses_speaker_norm and predictor.per_recording
    together = predictor.predict_files(paths, speakers="call")
    alone = predictor.predict_files(paths[:1])
    for r, g in zip(rows, together):
        np.testing.assert_allclose(list(g["probs"].values()), r["probs"], atol=2e-5)
    np.testing.assert_allclose(list(alone[0]["probs"].values()), rows[0]["probs"], atol=2e-5)
    # no "give more of the speaker's audio" notice: the model never uses a speaker's statistics
    assert all(r["warning"] is None or "speaker statistics" not in r["warning"] for r in together)
    with pytest.raises(ValueError, match="normalize='utterance'"):
        predictor.adapt_to_speaker(paths[:2])


def test_overlapping_segments_are_cut_alike_in_training_and_prediction(tmp_path):
    """data.segment_hop_s: training (the feature cache) and the Predictor (streamed files)
    cut the same overlapping segments, so a file's probabilities are the fold's reported ones;
    a 3.4 s file gets two segments (0-3 s and 1-3.4 s) where the plain cut keeps one."""
    workdir = train_workdir(tmp_path, folds="0", extra=["--config.data.segment_hop_s=1.0"])
    rows = result_of(workdir)["utterances"]
    got = Predictor.from_checkpoint(workdir, fold=0).predict_files([r["path"] for r in rows])
    for r, g in zip(rows, got):
        n = sf.info(r["path"]).frames
        assert g["segments"] == r["segments"] == segment_count(n, SR, 3.0, 1.0, hop_s=1.0)
        np.testing.assert_allclose(list(g["probs"].values()), r["probs"], atol=2e-5)
    assert any(r["segments"] > segment_count(sf.info(r["path"]).frames, SR, 3.0, 1.0)
               for r in rows)


def test_a_trimming_model_ignores_silence_before_and_after_the_speech(predictor, tmp_path):
    """data.trim_db: a file with a second of near-silence before the speech and half a second
    after is cut to the speech (frame-aligned here), so it gets the probabilities and the
    timeline of the speech alone, in the file's time; without the trim it does not."""
    speech = tone(2.5, 260)
    rng = np.random.default_rng(5)
    padded = np.concatenate([1e-4 * rng.standard_normal(SR), speech,
                             1e-4 * rng.standard_normal(SR // 2)]).astype(np.float32)
    sf.write(tmp_path / "speech.wav", speech, SR, subtype="FLOAT")
    sf.write(tmp_path / "padded.wav", padded, SR, subtype="FLOAT")
    config = predictor.config.copy_and_resolve_references()
    config.data.trim_db = 40.0
    trimming = Predictor(config, jax.device_get(predictor.variables), buckets=(1, 8))
    alone, cut = trimming.predict_files([tmp_path / "speech.wav", tmp_path / "padded.wav"],
                                        timeline=True)
    np.testing.assert_allclose(list(cut["probs"].values()), list(alone["probs"].values()),
                               atol=1e-5)
    assert cut["segments"] == 1 and cut["timeline"][0]["start_s"] == pytest.approx(1.0)
    plain, uncut = predictor.predict_files([tmp_path / "speech.wav", tmp_path / "padded.wav"])
    assert uncut["segments"] == 2  # 0-3 s and the 1 s tail
    assert max(abs(np.array(list(uncut["probs"].values())) - list(plain["probs"].values()))) > 1e-4
    np.testing.assert_allclose(  # the in-memory path cuts alike
        list(trimming.predict(padded, SR)["probs"].values()), list(cut["probs"].values()),
        atol=1e-5)


def test_a_short_utterance_in_a_long_silent_file_is_flagged_by_its_speech(predictor, tmp_path):
    """Under the silence trim the short-clip check measures the speech the model sees (0.5 s
    here), not the file (3 s); without the trim the file is long enough and no warning is due."""
    rng = np.random.default_rng(6)
    padded = np.concatenate([1e-4 * rng.standard_normal(SR), tone(0.5, 260),
                             1e-4 * rng.standard_normal(3 * SR // 2)]).astype(np.float32)
    sf.write(tmp_path / "padded.wav", padded, SR, subtype="FLOAT")
    config = predictor.config.copy_and_resolve_references()
    config.data.trim_db = 40.0
    trimming = Predictor(config, jax.device_get(predictor.variables), buckets=(1, 8))
    (rec,) = trimming.predict_files([tmp_path / "padded.wav"])
    assert rec["duration_s"] == pytest.approx(3.0)
    assert "short: 0.50 s of speech after the silence trim, under the 1 s minimum" in rec["warning"]
    assert "short: 0.50 s of speech" in trimming.predict(padded, SR)["warning"]
    (plain,) = predictor.predict_files([tmp_path / "padded.wav"])
    assert plain["warning"] is None or "short" not in plain["warning"]
