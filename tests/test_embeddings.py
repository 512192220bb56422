"""Predictor.embed and `adarl-jax predict --embeddings`: the model's deep feature per input."""

import csv
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import soundfile as sf

from adarl_jax.data.audio import segment
from adarl_jax.data.frontend import spectrogram
from adarl_jax.inference.predict import Predictor
from conftest import REPO
from conftest import SR, result_of, shared_workdir, tone


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return shared_workdir(tmp_path_factory)


@pytest.fixture(scope="module")
def predictor(workdir):
    return Predictor.from_checkpoint(workdir, fold=0, buckets=(1, 8))


def reference_features(predictor, wave):
    """Per-segment deep features straight from the model's apply on the front end's output."""
    assert not predictor.uses_speaker_norm  # the reference applies no normalisation
    segs, lengths, _ = segment(wave, SR, predictor.segment_s, predictor.min_tail_s)
    x = spectrogram(segs, lengths, predictor.spec)
    out = predictor.model.apply(predictor.variables, x, train=False)
    return np.asarray(jax.device_get(out["deep_feature"]), np.float64)


def test_embed_is_the_mean_of_the_segments_deep_features(predictor):
    wave = tone(7.0, 230, seed=3)  # 3 + 3 + 1 s
    ref = reference_features(predictor, wave)
    assert ref.shape == (3, predictor.embedding_dim)
    got = predictor.embed(wave, SR)
    assert got.dtype == np.float32 and got.shape == (predictor.embedding_dim,)
    np.testing.assert_allclose(got, ref.mean(0), rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, ref[0], atol=1e-4)  # a mean, not the first segment
    mean, segments = predictor.embed(wave, SR, timeline=True)
    np.testing.assert_allclose(segments, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(mean, got)


def test_file_embeddings_equal_the_training_reports(workdir, predictor):
    rows = result_of(workdir)["utterances"][:4]
    got = predictor.predict_files([r["path"] for r in rows], embeddings=True)
    for r, g in zip(rows, got):
        np.testing.assert_allclose(g["embedding"], r["deep_feature"], atol=2e-5)


def test_ensemble_embeddings_are_refused(workdir):
    both = Predictor.from_checkpoint(workdir, fold="all", buckets=(1,))
    with pytest.raises(ValueError, match="different spaces|own space"):
        both.embed(tone(2.0), SR)
    with pytest.raises(ValueError, match="own space"):
        both.predict_files([], embeddings=True)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "adarl_jax.cli", "predict", *map(str, args),
                           "--no-progress"], cwd=REPO, env=dict(os.environ, XLA_FLAGS=""),
                          capture_output=True, text=True)


def test_cli_writes_embeddings_in_the_row_order_of_the_predictions(workdir, predictor, tmp_path):
    waves = {"b.wav": tone(4.0, 200, seed=1), "a.wav": tone(7.0, 330, seed=2),
             "c.wav": tone(2.0, 410, seed=4)}
    for name, wave in waves.items():
        sf.write(tmp_path / name, wave, SR, subtype="FLOAT")
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    order = ["b.wav", "bad.wav", "a.wav", "c.wav"]
    out, emb = tmp_path / "p.csv", tmp_path / "e.npy"
    r = run_cli("--checkpoint", workdir, "--fold", "0", *(tmp_path / n for n in order),
                "--out", out, "--embeddings", emb, "--timeline")
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        files = [row["path"] for row in csv.DictReader(f) if row["start_s"] == ""]
    assert [os.path.basename(p) for p in files] == order
    arr = np.load(emb)
    assert arr.dtype == np.float32 and arr.shape == (4, predictor.embedding_dim)
    assert np.isnan(arr[1]).all() and np.isfinite(arr[[0, 2, 3]]).all()
    for i, name in enumerate(order):
        if name in waves:
            np.testing.assert_allclose(arr[i], reference_features(predictor, waves[name]).mean(0),
                                       rtol=1e-5, atol=1e-5)
    seg = np.load(tmp_path / "e.segments.npz")
    np.testing.assert_array_equal(seg["utterance_index"], [0, 0, 2, 2, 2, 3])
    np.testing.assert_allclose(seg["start_s"], [0, 3, 0, 3, 6, 0])
    np.testing.assert_allclose(seg["segments"][2:5], reference_features(predictor, waves["a.wav"]),
                               rtol=1e-5, atol=1e-5)


def test_cli_refuses_embeddings_of_all_folds(workdir, tmp_path):
    sf.write(tmp_path / "a.wav", tone(2.0), SR, subtype="FLOAT")
    r = run_cli("--checkpoint", workdir, "--fold", "all", tmp_path / "a.wav",
                "--out", tmp_path / "p.csv", "--embeddings", tmp_path / "e.npy")
    assert r.returncode == 2
    assert "--fold all" in r.stderr and "different spaces" in r.stderr
    assert not (tmp_path / "e.npy").exists() and not (tmp_path / "p.csv").exists()
