"""train.patience_fraction: a fold stops once its best validation epoch lies that fraction of
the schedule behind. Checked against a full run of the same fold: the early-stopped run's
epochs are the full run's (same validation UA, epoch by epoch), it ends where replaying the
rule on the full run's validation curve says, selects the best epoch of what it trained, and
a rerun after the stop trains nothing more."""

import json

import numpy as np
import pytest

from adarl_jax import cli
from adarl_jax.train.optim import patience_over, patience_steps
from conftest import TINY_OVERRIDES, make_corpus

EPOCHS, FRACTION = 24, 0.125  # a limit of 3 epochs' steps


def _train(manifest, workdir, *extra):
    rc = cli.main(["train", "--config", "smoke", "--corpus", "csv", "--manifest", str(manifest),
                   "--workdir", str(workdir), "--folds", "0", "--no-progress", "--workers", "1",
                   "--no-report", *TINY_OVERRIDES, f"--config.optim.epochs={EPOCHS}",
                   "--config.train.selection=val", "--config.train.val_speakers_per_gender=1",
                   "--config.model.variant=backbone",
                   "--config.train.checkpoint_every_steps=1000", *extra])  # as the recipe: not every epoch
    assert rc == 0
    fold = next((workdir / "backbone").glob("fold_00_*"))
    curve = [json.loads(line)["val_ua"] for line in (fold / "metrics.jsonl").read_text().splitlines()]
    return fold, curve, json.loads((fold / "result.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("patience")
    manifest = make_corpus(root / "corpus", speakers=tuple((f"s{i}", "MF"[i % 2]) for i in range(6)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADARL_JAX_COMPILATION_CACHE", "off")
        full = _train(manifest, root / "full")
        stopped = _train(manifest, root / "stopped", f"--config.train.patience_fraction={FRACTION}")
        yield manifest, root, full, stopped


def _first_best(curve):
    return int(np.argmax(curve))  # the first of equal maxima, as a strict '>' keeps it


def test_the_early_stopped_run_ends_where_the_full_curve_says(runs):
    _, _, (_, full_curve, full), (_, curve, result) = runs
    assert len(full_curve) == EPOCHS
    expected = next(e + 1 for e in range(EPOCHS)
                    if e - _first_best(full_curve[:e + 1]) >= FRACTION * EPOCHS)
    assert expected < EPOCHS, "the full curve never stalls: nothing to test"
    assert curve == full_curve[:expected]  # the same model epoch by epoch, then it stops
    assert result["epochs"] == expected
    assert result["selected_epoch"] == _first_best(full_curve[:expected])
    if result["selected_epoch"] == full["selected_epoch"]:
        assert result["utterances"] == full["utterances"]


def test_a_rerun_after_the_stop_trains_nothing_more(runs):
    manifest, root, _, (fold, curve, result) = runs
    (fold / "result.json").unlink()  # the fold is unfinished again: it resumes from its checkpoint
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADARL_JAX_COMPILATION_CACHE", "off")
        _, again, rerun = _train(manifest, root / "stopped", f"--config.train.patience_fraction={FRACTION}")
    assert again == curve
    assert (rerun["epochs"], rerun["selected_epoch"], rerun["utterances"]) == (
        result["epochs"], result["selected_epoch"], result["utterances"])


def test_a_domain_pretraining_starts_no_count():
    """Its epochs train the gender pathway alone (emotion scores at chance): the count starts
    at the last of them, and the limit is a fraction of the emotion schedule alone."""
    from adarl_jax.config import load_config
    from adarl_jax.train.optim import emotion_start_epoch

    config = load_config("smoke", ["train.selection=val", "train.patience_fraction=0.25",
                                   "optim.epochs=10", "optim.domain_pretrain_steps=20"])
    assert emotion_start_epoch(config, 4) == 5  # 20 steps of 4 a epoch: epochs 0-4
    assert patience_steps(config, 4) == 10.0  # 0.25 x the 10 emotion epochs x 4 steps
    assert not patience_over(0, 6, 4, 10.0, start_epoch=5)  # best at 0 (pretraining): count from 4
    assert patience_over(0, 7, 4, 10.0, start_epoch=5)
    assert patience_over(6, 9, 4, 10.0, start_epoch=5) and not patience_over(6, 8, 4, 10.0, 5)


def test_bad_fractions_are_refused_by_name():
    from adarl_jax.config import load_config

    for bad in ("-0.1", "1.0"):
        with pytest.raises(ValueError, match=r"train.patience_fraction"):
            load_config("smoke", [f"train.patience_fraction={bad}"])


def test_the_limit_is_a_fraction_of_the_schedule():
    from adarl_jax.config import load_config

    config = load_config("smoke", ["train.selection=val", "train.patience_fraction=0.25",
                                   "optim.train_steps=600"])
    assert patience_steps(config, 9) == 150.0  # of optim.train_steps, not of the epochs' 603
    config = load_config("smoke", ["train.selection=val", "train.patience_fraction=0.25",
                                   "optim.epochs=10"])
    assert patience_steps(config, 4) == 10.0  # 0.25 x 10 epochs x 4 steps
    assert patience_steps(load_config("smoke", ["train.patience_fraction=0.25"]), 4) == 0.0  # 'last'
    assert not patience_over(-1, 50, 4, 10.0)  # no best epoch yet
    assert not patience_over(3, 5, 4, 10.0) and patience_over(3, 6, 4, 10.0)
    assert not patience_over(3, 60, 4, 0.0)  # off
