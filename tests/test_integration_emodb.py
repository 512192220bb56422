"""The real pipeline on a slice of Berlin EmoDB (skipped when the corpus is not beside us)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, tiny_input_shape

pytestmark = pytest.mark.integration


def _cli(*args, cwd=REPO):
    out = subprocess.run([sys.executable, "-m", "adarl_jax.cli", *args], cwd=cwd,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_train_two_variants_on_an_emodb_slice_and_report(emodb_dir, tmp_path):
    w = tmp_path / "w"
    for variant in ("backbone", "adarl"):
        stdout = _cli("train", "--config", "smoke", "--data", str(emodb_dir), "--workdir", str(w),
                      "--folds", "0,5", "--variant", variant, "--no-progress")
        assert f"[{variant}] trainable parameters:" in stdout
    results = json.loads((w / "results.json").read_text())
    assert set(results) == {"backbone", "adarl"}
    classes = ["anger", "happiness", "sadness", "neutral"]
    for variant, r in results.items():
        assert r["classes"] == classes
        assert [f["fold"] for f in r["folds"]] == [0, 5]
        speakers = [f["speaker"] for f in r["folds"]]
        assert speakers == ["03", "12"]  # EmoDB speakers in sorted order
        # pooled figures recomputed from the per-fold result files
        rows = [u for f in sorted(w.glob(f"{variant}/fold_*/result.json"))
                for u in json.loads(f.read_text())["utterances"]]
        y = np.array([u["emotion"] for u in rows])
        p = np.array([int(np.argmax(u["probs"])) for u in rows])
        assert r["n_utterances"] == len(rows) > 0
        assert r["wa_pooled"] == pytest.approx(np.mean(y == p))
        assert all(u["speaker"] in speakers for u in rows)
        np.testing.assert_allclose([sum(u["probs"]) for u in rows], 1, atol=1e-4)
    assert "gender_accuracy_fold_mean" in results["adarl"]
    assert "gender_accuracy_fold_mean" not in results["backbone"]
    # rerunning the same command skips the finished folds
    stdout = _cli("train", "--config", "smoke", "--data", str(emodb_dir), "--workdir", str(w),
                  "--folds", "0", "--variant", "adarl", "--no-progress")
    assert "fold 0 (03)" in stdout


def test_prepare_caches_and_features_writes_the_model_input(emodb_dir, tmp_path):
    args = ("prepare", "--config", "smoke", "--corpus", "emodb", "--data", str(emodb_dir),
            "--workdir", str(tmp_path), "--no-progress")
    summary = json.loads(_cli(*args))
    assert summary["n_utterances"] == 40 and summary["from_cache"] is False
    again = json.loads(_cli(*args))
    assert again["from_cache"] is True
    assert again == {**summary, "time_s": again["time_s"], "from_cache": True}
    assert len(list((tmp_path / "cache").iterdir())) == 1
    wav = sorted((emodb_dir / "wav").glob("*.wav"))[0]
    out = tmp_path / "x.npy"
    _cli("features", "--config", "smoke", str(wav), "--out", str(out))
    x = np.load(out, allow_pickle=False)
    assert x.shape[1:] == tiny_input_shape() and x.dtype == np.float32 and np.isfinite(x).all()
