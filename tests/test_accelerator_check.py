"""benchmarks/accelerator_check.py --dry-run: every part's code path on the CPU, one JSON file."""

import json
import sys

import pytest

from conftest import REPO, make_corpus

sys.path.insert(0, str(REPO / "benchmarks"))


def test_dry_run_writes_every_part(tmp_path):
    import accelerator_check

    manifest = make_corpus(tmp_path / "corpus")
    out = tmp_path / "check.json"
    accelerator_check.main([str(manifest.parent), "--corpus", "csv", "--manifest", str(manifest),
                            "--dry-run", "--no-torch", "--out", str(out),
                            "--budget-s", "1e6",  # every part runs, however loaded the machine
                            "--workdir", str(tmp_path / "loso")])
    got = json.loads(out.read_text())
    assert got["check"] == "accelerator" and got["dry_run"] is True
    assert got["device"]["backend"] == "cpu"
    assert "skipped" not in got["jax"]
    for mode in ("train", "infer"):
        for dtype in ("float32", "bfloat16"):
            for batch in ("8", "16"):
                cell = got["jax"][mode][dtype][batch]
                assert cell["segments_per_s"] > 0 and cell["compile_s"] >= 0, (mode, dtype, batch)
                assert "peak_device_bytes" in cell
    assert got["multi_fold"]["folds"] == 3 and got["multi_fold"]["speedup"] > 0
    assert got["torch"] == {"skipped": "--no-torch"}
    loso = got["loso"]
    assert set(loso["variants"]) == {"adarl", "backbone", "domain_invariant"}
    for v in loso["variants"].values():
        assert v["folds"] == 1 and 0 <= v["ua_pooled"] <= 1 and 0 <= v["wa_pooled"] <= 1
    assert loso["wall_s"] > 0 and len(loso["fold_s"]) == 1
    assert got["elapsed_s"] > 0


def test_without_an_accelerator_the_check_fails_clearly():
    import accelerator_check

    with pytest.raises(SystemExit, match="jax sees no GPU or TPU"):
        accelerator_check.device_info(dry_run=False)
