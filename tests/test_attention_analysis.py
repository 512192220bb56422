"""What the domain-aware attention does (adarl_jax.report.attention): the replacement of
I^D, the diagnostics' statistics against independent references, and a run on fold models."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, tiny_config, tiny_input_shape, train_workdir
from adarl_jax.report.attention import (REPLACEMENT, AttentionReplaced, _auc, summarize_folds)
from adarl_jax.model import build_model, init_variables


def _model_and_variables():
    config = tiny_config("adarl")
    model = build_model(config)
    variables = init_variables(model, tiny_input_shape(), jax.random.key(0, impl="rbg"))
    x = jax.random.normal(jax.random.key(1), (1, *tiny_input_shape()))
    return model, variables, x


def test_replacing_the_attention_by_its_own_value_changes_nothing():
    model, variables, x = _model_and_variables()
    out = model.apply(variables, x, train=False)
    replaced = AttentionReplaced(model).apply({**variables, REPLACEMENT: out["attention"][0]}, x)
    np.testing.assert_allclose(replaced["emotion_logits"], out["emotion_logits"], rtol=1e-6)
    other = AttentionReplaced(model).apply({**variables, REPLACEMENT: 1 - out["attention"][0]}, x)
    assert not np.allclose(other["emotion_logits"], out["emotion_logits"])
    np.testing.assert_allclose(other["attention"], jnp.broadcast_to(1 - out["attention"][0],
                                                                    out["attention"].shape))


def test_ones_is_what_a_saturated_attention_computes():
    model, variables, x = _model_and_variables()
    params = jax.tree.map(lambda a: a, variables["params"])
    params["attention"]["fc2"]["bias"] = jnp.full_like(params["attention"]["fc2"]["bias"], 40.0)
    saturated = {**variables, "params": params}
    out = model.apply(saturated, x, train=False)
    ones = AttentionReplaced(model).apply({**saturated, REPLACEMENT: jnp.ones(out["attention"].shape[1])}, x)
    np.testing.assert_allclose(ones["emotion_logits"], out["emotion_logits"], rtol=1e-6)


def test_rank_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=50), 1)  # ties included
    y = rng.random(50) > 0.4
    np.testing.assert_allclose(_auc(s, y), roc_auc_score(y, s), rtol=1e-12)


def _record(fold, speaker, domain, rng, same=True):
    att = rng.random((6, 4))
    preds = rng.integers(0, 4, 6).tolist()
    return {"fold": fold, "test_speaker": speaker,
            "train": {"attention": rng.random((10, 4)).tolist(), "domain": [0, 1] * 5},
            "test": {"attention": att.tolist(), "within_var": (att * 0.1).tolist(),
                     "domain": [domain] * 6, "emotion": [0, 1, 2, 3, 0, 1], "pred": preds},
            "interventions": {n: preds if same else [(p + 1) % 4 for p in preds]
                              for n in ("train_mean", "other_gender", "ones")}}


def test_summary_statistics_and_the_inert_verdict():
    from adarl_jax.report.attention import markdown

    rng = np.random.default_rng(1)
    records = [_record(0, "a", 0, rng), _record(1, "b", 1, rng)]
    s = summarize_folds(records, ("anger", "happiness", "sadness", "neutral"), ("F", "M"))
    att = np.concatenate([np.array(r["test"]["attention"]) for r in records])
    np.testing.assert_allclose(s["between_var"], att.var(0).mean())
    np.testing.assert_allclose(s["by_domain"]["M"]["mean"], att[6:].mean(0))
    assert s["by_class"]["anger"]["n"] == 4
    assert all(i["labels_changed"] == 0 and i["paired"]["mean"] == 0
               for i in s["interventions"].values())
    assert "mechanically inert" in "\n".join(markdown("adarl", s))
    changed = summarize_folds([_record(0, "a", 0, rng, same=False)], ("a", "b", "c", "d"), ("F", "M"))
    assert changed["interventions"]["ones"]["labels_changed"] == 1.0
    assert "mechanically inert" not in "\n".join(markdown("adarl", changed))


def test_analyze_reads_the_fold_models_and_agrees_with_their_results(tmp_path):
    workdir = train_workdir(tmp_path, folds="0,1")
    subprocess.run([sys.executable, "-m", "adarl_jax.cli", "analyze", "--workdir", str(workdir),
                    "--variant", "adarl", "--sample", "8"], check=True, cwd=REPO,
                   capture_output=True)
    saved = json.loads((workdir / "adarl" / "attention.json").read_text())
    assert [r["fold"] for r in saved["folds"]] == [0, 1]
    for r in saved["folds"]:
        result = json.loads(next(workdir.glob(f"adarl/fold_{r['fold']:02d}_*/result.json")).read_text())
        # the analysis's own labels are the fold's test predictions
        assert r["test"]["pred"] == [int(np.argmax(u["probs"])) for u in result["utterances"]]
        assert len(r["train"]["utterance"]) == 8
        assert set(r["interventions"]) == {"train_mean", "other_gender", "ones"}
    summary = saved["summary"]
    assert 0 <= summary["interventions"]["ones"]["ua"] <= 1
    md = (workdir / "attention_adarl.md").read_text()
    assert "Test-time interventions" in md and "](figures/attention_adarl.png)" in md
    assert (workdir / "figures" / "attention_adarl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_attention_profile_plots_each_fold_models_mean_and_the_pooled_band(tmp_path):
    pytest.importorskip("matplotlib")
    from adarl_jax.report.figures import plot_attention_profile

    rng = np.random.default_rng(0)
    folds = [{"attention": rng.random((6, 4)), "domain": np.array([0, 0, 1, 1, 1, 0])},
             {"attention": rng.random((5, 4)), "domain": np.array([1, 1, 1, 1, 1])}]
    fig = plot_attention_profile(folds, ("F", "M"), tmp_path / "a.png")
    female, male = fig.axes
    # F: only fold 0 has female utterances (a thin line), then the pooled mean
    np.testing.assert_allclose(female.lines[0].get_ydata(), folds[0]["attention"][[0, 1, 5]].mean(0))
    np.testing.assert_allclose(female.lines[-1].get_ydata(), folds[0]["attention"][[0, 1, 5]].mean(0))
    both = np.concatenate([folds[0]["attention"][[2, 3, 4]], folds[1]["attention"]])
    assert len(male.lines) == 3  # two fold models, then the pooled mean
    np.testing.assert_allclose(male.lines[1].get_ydata(), folds[1]["attention"].mean(0))
    np.testing.assert_allclose(male.lines[-1].get_ydata(), both.mean(0))
    band = male.collections[0].get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose([band.min(), band.max()],
                               [(both.mean(0) - both.std(0)).min(), (both.mean(0) + both.std(0)).max()])
    assert female.get_title() == "female" and (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
