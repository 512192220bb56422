"""A workdir's config is its identity: another model, recipe or data is refused, naming the
fields; --force-new-config moves the old folds aside instead of reusing them; each fold folder
keeps the config it was trained with."""

import json
import shlex

import pytest

from adarl_jax.experiments import loso
from adarl_jax.workdir import pinning
from adarl_jax.config import apply_override, config_from_json, to_json
from adarl_jax.workdir.pinning import ConfigMismatchError
from conftest import make_corpus, tiny_config


def test_only_fields_that_change_results_count():
    a = tiny_config()
    assert pinning.pinned_differences(config_from_json(to_json(a)), a) == []  # JSON round trip
    b = a.copy_and_resolve_references()
    b.data.dir, b.data.manifest, b.model.variant = "/elsewhere", "/elsewhere/m.csv", "backbone"
    b.train.progress, b.train.keep_checkpoints, b.train.checkpoint_every_steps = True, 5, 100
    assert pinning.pinned_differences(a, b) == []
    features = [list(f) for f in a.model.block_features]
    wider = [*features[:-1], [2 * n for n in features[-1]]]  # the last block twice as wide
    b.frontend.log_floor, b.model.block_features = 0.01, tuple(map(tuple, wider))
    b.train.seed, b.data.classes, b.train.eval_batch_size = 3, ("anger", "sadness"), 64
    assert pinning.pinned_differences(a, b) == [
        ("data.classes", ["anger", "happiness", "sadness", "neutral"], ["anger", "sadness"]),
        ("frontend.log_floor", 1e-6, 0.01), ("model.block_features", features, wider),
        ("train.eval_batch_size", a.train.eval_batch_size, 64), ("train.seed", 0, 3)]


def test_a_changed_config_is_refused_naming_the_fields(tmp_path):
    w = tmp_path / "w"
    w.mkdir()
    a = tiny_config()
    assert loso.save_run_config(a, w) == []
    saved = (w / "config.json").read_text()
    b = a.copy_and_resolve_references()
    b.train.progress, b.data.dir = True, "/moved"
    loso.save_run_config(b, w)  # ignored fields: accepted
    b.frontend.log_floor, b.optim.lr = 0.01, 0.5
    with pytest.raises(ConfigMismatchError) as e:
        loso.save_run_config(b, w)
    msg = str(e.value)
    assert "frontend.log_floor 1e-06 -> 0.01" in msg and "optim.lr 0.2 -> 0.5" in msg
    assert "--force-new-config" in msg and "new --workdir" in msg and "superseded-" in msg
    assert "progress" not in msg and "\n" not in msg
    assert json.loads((w / "config.json").read_text())["frontend"] == json.loads(saved)["frontend"]
    # the overrides it names give the workdir's values back: the same run is then accepted
    hint = msg.split(", or pass ")[1].split(" to go on under")[0].split()
    assert hint == ["--config.frontend.log_floor=1e-06", "--config.optim.lr=0.2"]
    for item in hint:
        apply_override(b, item.removeprefix("--config."))
    assert loso.save_run_config(b, w) == []
    # a string and a bool: each spelled so that it comes back
    b.model.first_convs, b.model.fused_bn_pool = "space_to_depth", not a.model.fused_bn_pool
    with pytest.raises(ConfigMismatchError) as e:
        loso.save_run_config(b, w)
    hint = shlex.split(str(e.value).split(", or pass ")[1].split(" to go on under")[0])
    for item in hint:
        apply_override(b, item.removeprefix("--config."))
    assert loso.save_run_config(b, w) == []
    b.model.block_features = ((1, 1),) * len(a.model.block_features)  # no scalar: no overrides
    with pytest.raises(ConfigMismatchError) as e:
        loso.save_run_config(b, w)
    assert "model.block_features" in str(e.value) and "to go on under" not in str(e.value)


@pytest.mark.parametrize("field, value", [
    ("frontend.scale", "16"), ("frontend.scale", "a b"), ("frontend.scale", "None"),
    ("optim.lr", 1e-06), ("model.fused_bn_pool", False), ("optim.batch_size", 7)])
def test_an_override_spelling_gives_the_value_back_through_the_shell(field, value):
    c = tiny_config()
    (item,) = shlex.split(shlex.quote(f"--config.{field}={pinning._override_spelling(value)}"))
    apply_override(c, item.removeprefix("--config."))
    section, name = field.split(".")
    assert c[section][name] == value and type(c[section][name]) is type(value)


def test_values_no_override_spells_get_no_hint():
    for value in (float("nan"), float("inf"), (1, 2), [3], None):
        assert pinning._override_spelling(value) is None
    assert pinning.restoring_overrides([("optim.lr", 0.2, 0.5), ("data.classes", "a", "b")]) == ""
    assert pinning.restoring_overrides([("optim.lr", 0.2, None)]) == ""
    assert pinning.restoring_overrides([("optim.lr", 0.2, 0.5)]) == "--config.optim.lr=0.2"


def test_a_fold_folder_keeps_its_own_config(tmp_path):
    a = tiny_config("backbone")
    fold = tmp_path / "backbone" / "fold_00_s1"
    pinning.pin_fold_config(a, fold)
    assert config_from_json((fold / "config.json").read_text()).model.variant == "backbone"
    pinning.pin_fold_config(a, fold)  # the same again: fine
    b = a.copy_and_resolve_references()
    b.model.variant = "adarl"
    with pytest.raises(ConfigMismatchError, match=r"model.variant \"backbone\" -> \"adarl\""):
        pinning.pin_fold_config(b, fold)
    finished = tmp_path / "backbone" / "fold_01_s2"
    finished.mkdir()
    (finished / "result.json").write_text("{}")
    pinning.pin_fold_config(a, finished)  # trained by an older version: nothing is claimed
    assert not (finished / "config.json").exists()


def test_supersede_keeps_cache_locks_and_earlier_superseded_folders(tmp_path):
    w = tmp_path / "w"
    for d in ("cache/abc", ".locks", "superseded-20000101-000000", "adarl/fold_00_s1",
              "opensmile_egemaps_svm/fold_00_s1"):
        (w / d).mkdir(parents=True)
    for f in ("config.json", "results.json", "report.md"):
        (w / f).write_text("x")
    moved = pinning.supersede(w)
    assert sorted(p.name for p in w.iterdir()) == sorted([".locks", "cache", moved.name,
                                                          "superseded-20000101-000000"])
    assert sorted(p.name for p in moved.iterdir()) == [
        "adarl", "config.json", "opensmile_egemaps_svm", "report.md", "results.json"]
    assert pinning.supersede(w) is None


def test_train_refuses_a_changed_config_and_force_starts_afresh(tmp_path, capsys):
    config = tiny_config("adarl")
    config.optim.epochs = 1
    config.data.corpus = "csv"
    config.data.manifest = str(make_corpus(tmp_path / "corpus"))
    w = tmp_path / "w"
    first = loso.run(config, w, folds="0", progress=False)[0]
    fold = loso.fold_dir(w, "adarl", type("F", (), {"index": 0, "test_speaker": first["test_speaker"]}))
    assert config_from_json((fold / "config.json").read_text()).model.variant == "adarl"
    assert not list((w / ".locks").iterdir())  # released at the end

    changed = config.copy_and_resolve_references()
    changed.frontend.log_floor = 0.01
    with pytest.raises(ConfigMismatchError, match="frontend.log_floor"):
        loso.run(changed, w, folds="0", progress=False)
    assert json.loads((fold / "result.json").read_text()) == first  # untouched

    second = loso.run(changed, w, folds="0", progress=False, force_new_config=True)[0]
    old = next(w.glob("superseded-*"))
    assert "what the old config trained is now in" in capsys.readouterr().out
    assert json.loads((old / "adarl" / fold.name / "result.json").read_text()) == first
    assert config_from_json((old / "config.json").read_text()).frontend.log_floor == 1e-6
    assert config_from_json((w / "config.json").read_text()).frontend.log_floor == 0.01
    assert config_from_json((fold / "config.json").read_text()).frontend.log_floor == 0.01
    assert second["utterances"] != first["utterances"]  # trained again, not reused
