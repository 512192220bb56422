"""export.py: a jax.export artifact that equals the in-process model and needs jax alone."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from adarl_jax.inference.export import export_predictor, load_exported
from adarl_jax.inference.predict import Predictor
from conftest import REPO, tiny_input_shape
from conftest import shared_workdir


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor.from_checkpoint(shared_workdir(tmp_path_factory), fold=0, buckets=(1, 8))


def spectrograms(predictor, n, seed=0):
    shape = (n, predictor.spec.n_bins, predictor.spec.n_frames, 3)
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_symbolic_batch_artifact_equals_the_in_process_model(predictor, tmp_path):
    meta = export_predictor(predictor, tmp_path / "model.jax", platforms=("cpu",))
    assert meta["batch"] == "symbolic" and meta["classes"] == list(predictor.classes)
    exported, saved = load_exported(tmp_path / "model.jax")
    assert saved == meta
    for n in (1, 3, 8):  # any batch size, one artifact
        x = spectrograms(predictor, n, seed=n)
        np.testing.assert_allclose(np.asarray(exported.call(x)), predictor.probs_of_spectrograms(x),
                                   rtol=1e-6, atol=1e-6)


def test_artifact_runs_with_jax_alone(predictor, tmp_path):
    export_predictor(predictor, tmp_path / "model.jax")  # cpu, cuda and tpu
    x = spectrograms(predictor, 5)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, jax, numpy as np\n"
        "e = jax.export.deserialize(bytearray(open(sys.argv[1], 'rb').read()))\n"
        "np.save(sys.argv[3], np.asarray(e.call(np.load(sys.argv[2]))))\n"
        "assert not [m for m in sys.modules if m.startswith(('adarl_jax', 'flax'))]\n"
        "print(e.platforms)\n")
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path / "model.jax"),
                          str(tmp_path / "x.npy"), str(tmp_path / "y.npy")], cwd=tmp_path,
                         capture_output=True, text=True, env=dict(os.environ, XLA_FLAGS=""))
    assert res.returncode == 0, res.stderr
    assert "cuda" in res.stdout and "tpu" in res.stdout
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), predictor.probs_of_spectrograms(x),
                               rtol=1e-6, atol=1e-6)


def test_waveform_artifact_includes_the_front_end(predictor, tmp_path):
    export_predictor(predictor, tmp_path / "wave.jax", input="waveform", platforms=("cpu",))
    exported, meta = load_exported(tmp_path / "wave.jax")
    assert meta["input_shape"] == ["batch", predictor.segment_length]
    rng = np.random.default_rng(1)
    waves = (0.1 * rng.normal(size=(3, predictor.segment_length))).astype(np.float32)
    lengths = np.array([predictor.segment_length, 20000, 9000], np.int32)
    want = np.asarray(predictor._infer(predictor.variables, waves, lengths))
    np.testing.assert_allclose(np.asarray(exported.call(waves, lengths)), want, rtol=1e-5, atol=1e-6)


def test_one_artifact_per_bucket_when_not_symbolic(predictor, tmp_path):
    meta = export_predictor(predictor, tmp_path / "m.jax", platforms=("cpu",), symbolic=False)
    assert meta["batch"] == "buckets" and sorted(meta["artifacts"]) == ["1", "8"]
    for b in (1, 8):
        exported, _ = load_exported(tmp_path / f"m.b{b}.jax")
        x = spectrograms(predictor, b)
        np.testing.assert_allclose(np.asarray(exported.call(x)), predictor.probs_of_spectrograms(x),
                                   rtol=1e-6, atol=1e-6)


def test_cli_export(tmp_path_factory, tmp_path):
    workdir = shared_workdir(tmp_path_factory)
    out = tmp_path / "model.jax"
    res = subprocess.run([sys.executable, "-m", "adarl_jax.cli", "export", "--checkpoint",
                          str(workdir), "--fold", "1", "--out", str(out), "--platforms", "cpu"],
                         cwd=REPO, capture_output=True, text=True, env=dict(os.environ, XLA_FLAGS=""))
    assert res.returncode == 0, res.stderr
    meta = json.loads((tmp_path / "model.jax.json").read_text())
    assert meta["artifacts"]["b"]["bytes"] == out.stat().st_size > 0
    assert meta["variant"] == "adarl" and "fold 1" in meta["source"]
    assert meta["input_shape"][1:] == list(tiny_input_shape())


def test_a_folds_own_config_wins_over_the_workdirs(tmp_path_factory, tmp_path, predictor):
    """A later run may rewrite W/config.json; the fold keeps the config it was trained with."""
    import shutil

    workdir = shared_workdir(tmp_path_factory)
    fold_dir = next((workdir / "adarl").glob("fold_00_*"))
    other = tmp_path / "W"
    shutil.copytree(fold_dir, other / "adarl" / fold_dir.name)
    config = json.loads((workdir / "config.json").read_text())
    (other / "adarl" / fold_dir.name / "config.json").write_text(json.dumps(config))
    config["frontend"].update(n_bins=40, n_frames=30, hop_s=0.1, n_fft=160)  # another run's
    (other / "config.json").write_text(json.dumps(config))
    pinned = Predictor.from_checkpoint(other, fold=0, buckets=(1, 8))
    assert (pinned.spec.n_bins, pinned.spec.n_frames) == tiny_input_shape()[:2]
    x = spectrograms(predictor, 3)
    np.testing.assert_array_equal(pinned.probs_of_spectrograms(x), predictor.probs_of_spectrograms(x))
    meta = export_predictor(pinned, tmp_path / "model.jax", platforms=("cpu",))
    assert meta["input_shape"][1:] == list(tiny_input_shape())
    (other / "adarl" / fold_dir.name / "config.json").unlink()  # without it: the workdir's
    with pytest.raises(ValueError, match="not trained with the config"):
        Predictor.from_checkpoint(other, fold=0)
