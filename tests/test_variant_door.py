"""The variant door: a variant module outside the package, with a setting of its own, is
trained, predicted with and exported through the command line, from its own file alone."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from conftest import REPO, TINY_OVERRIDES, make_corpus, tiny_input_shape

EXAMPLE = REPO / "examples" / "se_attention.py"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "adarl_jax.cli", *args], cwd=REPO,
                          env=dict(os.environ, XLA_FLAGS=""), capture_output=True, text=True,
                          timeout=1800)


def _se_shapes(config):
    """Shapes of the SE block's parameters, traced without compiling."""
    from adarl_jax.config import input_shape
    from adarl_jax.model import build_model

    dummy = jnp.zeros((1, *input_shape(config)), jnp.float32)
    variables = jax.eval_shape(build_model(config).init, jax.random.key(0), dummy)
    return jax.tree.map(lambda a: a.shape, variables["params"]["se"])


def _config(variant_file, *extra):
    from adarl_jax.config import load_config

    return load_config("smoke", [*TINY_OVERRIDES, f"--config.model.variant_file={variant_file}",
                                 "--config.model.variant=se_attention", *extra])


def test_a_variant_setting_is_an_override_and_changes_the_parameters(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    default = _se_shapes(_config(tmp_path / EXAMPLE.name))  # se_ratio=4: 8 channels -> 2
    wider = _se_shapes(_config(tmp_path / EXAMPLE.name, "--config.model.se_ratio=2"))
    assert default["squeeze"]["kernel"] == (8, 2) and wider["squeeze"]["kernel"] == (8, 4)
    assert wider["excite"]["kernel"] == (4, 8)


def test_a_key_no_variant_declares_is_refused():
    from adarl_jax.config import load_config

    with pytest.raises(KeyError, match="model.se_ratiox.*no registered variant declares it"):
        load_config("smoke", ["--config.model.se_ratiox=2"])
    with pytest.raises(TypeError, match="se_ratio is int"):
        _config(EXAMPLE, "--config.model.se_ratio='wide'")


def test_a_missing_or_broken_variant_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.py"):
        _config(tmp_path / "nowhere.py")
    broken = tmp_path / "broken_variant.py"
    broken.write_text("import flax.linen as nn\nraise RuntimeError('half written')\n")
    with pytest.raises(ImportError, match="broken_variant.py.*RuntimeError: half written"):
        _config(broken)


def test_train_predict_export_an_outside_variant_through_the_cli(tmp_path):
    from adarl_jax.config import config_from_json

    variant_file = tmp_path / "mine" / "se_attention.py"
    variant_file.parent.mkdir()
    shutil.copy(EXAMPLE, variant_file)
    manifest = make_corpus(tmp_path / "corpus")
    w = tmp_path / "w"
    trained = _cli("train", "--config", "smoke", "--corpus", "csv", "--manifest", str(manifest),
                   "--workdir", str(w), "--no-progress", "--workers", "1", *TINY_OVERRIDES,
                   "--config.optim.epochs=1", "--folds", "0,1",
                   f"--config.model.variant_file={variant_file}",
                   "--config.model.variant=se_attention", "--config.model.se_ratio=2")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert len(list(w.glob("se_attention/fold_*/result.json"))) == 2
    saved = config_from_json((w / "config.json").read_text())
    kept = w / "variants" / hashlib.sha256(variant_file.read_bytes()).hexdigest()[:16] / EXAMPLE.name
    assert saved.model.variant_file == str(kept.resolve()) and saved.model.se_ratio == 2
    assert kept.read_bytes() == variant_file.read_bytes()
    assert _se_shapes(saved)["squeeze"]["kernel"] == (8, 4)

    wavs = sorted((tmp_path / "corpus" / "wav").glob("*.wav"))[:3]
    preds = tmp_path / "preds.json"
    predicted = _cli("predict", "--checkpoint", str(w), "--fold", "0", "--buckets", "1",
                     *map(str, wavs), "--out", str(preds), "--no-progress")
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(preds.read_text())
    assert len(rows) == 3 and all(len([k for k in r if k.startswith("p_")]) == 4 for r in rows)

    # the original edited (same shapes, another gate), then deleted: the run predicts as before
    variant_file.write_text(EXAMPLE.read_text().replace("nn.sigmoid(", "0.5 * nn.sigmoid("))
    again = tmp_path / "again.json"
    predicted = _cli("predict", "--checkpoint", str(w), "--fold", "0", "--buckets", "1",
                     *map(str, wavs), "--out", str(again), "--no-progress")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(again.read_text()) == rows
    variant_file.unlink()

    out = tmp_path / "se.jax"
    exported = _cli("export", "--checkpoint", str(w), "--fold", "0", "--buckets", "1",
                    "--out", str(out), "--platforms", "cpu")
    assert exported.returncode == 0, exported.stderr
    meta = json.loads((tmp_path / "se.jax.json").read_text())
    assert meta["variant"] == "se_attention" and meta["input_shape"][1:] == list(tiny_input_shape())
    assert out.stat().st_size > 0


def test_uses_domain_and_the_outputs_must_agree(tmp_path):
    from adarl_jax.config import input_shape
    from adarl_jax.model import build_model, init_variables

    liar = tmp_path / "liar_variant.py"
    liar.write_text(EXAMPLE.read_text().replace(
        '"se_attention", uses_domain=False', '"liar_attention", uses_domain=True'))
    config = _config(liar, "--config.model.variant=liar_attention")
    with pytest.raises(ValueError, match="'liar_attention'.*uses_domain=True.*lack 'domain_logits'"):
        init_variables(build_model(config), input_shape(config), jax.random.key(0))


def test_every_declared_setting_is_recorded_defaults_included():
    from adarl_jax.config import config_from_json, to_json

    saved = json.loads(to_json(_config(EXAMPLE)))
    assert saved["model"]["se_ratio"] == 4  # the default, not overridden
    assert config_from_json(json.dumps(saved)).model.se_ratio == 4


def test_a_kept_copy_is_what_loads_and_a_changed_copy_is_refused_naming_it(tmp_path):
    from adarl_jax.model.registry import variant_of
    from adarl_jax.workdir.kept_variant import keep_variant_file

    original = tmp_path / "mine" / EXAMPLE.name
    original.parent.mkdir()
    shutil.copy(EXAMPLE, original)
    config = _config(original)
    keep_variant_file(config, tmp_path / "w")
    copy = tmp_path / "w" / "variants" / hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()[:16] / EXAMPLE.name
    assert config.model.variant_file == str(copy.resolve())
    assert config.model.variant_sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    original.unlink()
    assert variant_of(config).name == "se_attention"  # the copy serves
    copy.write_text(copy.read_text().replace("nn.sigmoid(", "0.5 * nn.sigmoid("))
    with pytest.raises(ValueError, match=f"{copy}: this variant file was changed"):
        variant_of(config)
