"""A job's folds share their train step and evaluator (adarl_jax.train.programs): the second
fold builds and traces nothing new, and every fold's result is the one it gets alone."""

import numpy as np
import pytest

from adarl_jax.data.folds import loso_folds
from adarl_jax.data.reading import load_dataset
from adarl_jax.train import trainer
from adarl_jax.train.programs import Programs, recipe_key, step_seed
from adarl_jax.train.sharding import make_mesh
from conftest import make_corpus, tiny_config


def test_programs_build_once_per_key():
    programs, built = Programs(), []
    build = lambda tag: (lambda: built.append(tag) or object())
    a = programs.get(("step", 8), build("a"))
    assert programs.get(("step", 8), build("b")) is a
    assert programs.get(("step", 9), build("c")) is not a
    assert built == ["a", "c"] and len(programs) == 2


def test_the_recipe_key_is_the_config_but_the_seed():
    a, b = tiny_config("adarl"), tiny_config("adarl")
    b.train.seed = 3
    assert recipe_key(a) == recipe_key(b)
    b.optim.lr = 0.5
    assert recipe_key(a) != recipe_key(b)


def test_the_seed_is_part_of_the_key_only_where_the_step_draws_keys():
    config = tiny_config("adarl")
    assert step_seed(config, 7) is None
    config.augment.freq_masks = 1
    assert step_seed(config, 7) == 7
    config = tiny_config("adarl")
    config.augment.mixup_alpha = 0.2
    assert step_seed(config, 7) == 7


def _corpus_config(tmp_path, case: str):
    config = tiny_config("adarl")
    config.data.corpus = "csv"
    manifest = make_corpus(tmp_path / "corpus")  # 4 speakers, 8 recordings each
    if case == "other_steps":  # half of s1's recordings gone: its fold trains on more segments
        lines = manifest.read_text().splitlines()
        manifest.write_text("\n".join(l for l in lines if not (",s1," in l and "_1.wav" in l)) + "\n")
        config.optim.batch_size = 4
    if case == "augment":  # the step draws keys: each fold's own seed
        config.augment.freq_masks = 1
    config.data.manifest = str(manifest)
    config.train.selection = "last"
    return config


# case -> (distinct train steps among the two folds, whether the two folds have equal steps)
CASES = {"plain": (1, True), "augment": (2, True), "other_steps": (2, False)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_shared_programs_give_each_fold_its_own_result(tmp_path, monkeypatch, case):
    """Two folds with and without a shared Programs: the same probabilities; the step is built
    and traced once where nothing it closes over differs (no augmentation, equal steps per
    epoch), once a fold where the seed (augmentation) or the steps per epoch differ."""
    config = _corpus_config(tmp_path, case)
    dataset = load_dataset(config, tmp_path / "w", progress=False)
    folds = loso_folds(dataset.utterances, 0, 0)[:2]
    steps = [-(-len(dataset.subset_segments(f.train)) // int(config.optim.batch_size))
             for f in folds]
    distinct, equal_steps = CASES[case]
    assert (steps[0] == steps[1]) == equal_steps, steps
    traced = []
    make = trainer.make_train_step

    def counting(*args, **kwargs):
        step = make(*args, **kwargs)

        def counted(state, batch):
            traced.append(1)  # runs only while jax traces the step
            return step(state, batch)
        return counted

    monkeypatch.setattr(trainer, "make_train_step", counting)
    mesh = make_mesh(1)
    alone = [trainer.run_fold(config, dataset, f, tmp_path / f"alone{f.index}", mesh,
                              progress=False) for f in folds]
    assert len(traced) == 2
    traced.clear()
    programs = Programs()
    shared = [trainer.run_fold(config, dataset, f, tmp_path / f"shared{f.index}", mesh,
                               progress=False, programs=programs) for f in folds]
    assert len(traced) == distinct
    assert len(programs) == distinct + 1  # and one evaluator
    for a, b in zip(alone, shared):
        assert a["steps"] == b["steps"] > 0
        np.testing.assert_array_equal([u["probs"] for u in a["utterances"]],
                                      [u["probs"] for u in b["utterances"]])
