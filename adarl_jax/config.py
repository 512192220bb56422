"""Configs as data: loading, overrides and validation of the configs in `configs/` (the base
config every shipped one starts from is `configs/base.py`).

A config file is a Python module with `get_config() -> ml_collections.ConfigDict`. Every
constant of the pipeline (front end, model shapes, loss weights, schedule) is a field of the
base config, so that a run is fully described by its config, which is saved next to its results.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
from pathlib import Path

import ml_collections

from adarl_jax.configs.base import get_config as base_config
from adarl_jax.model.registry import (declared_settings, load_variant_file, variant_of,
                                      with_declared_settings)

# frontend.normalize: 'segment' z-scores each segment in the front end; 'speaker' and
# 'utterance' leave the raw log values for the dataset to standardise with a speaker's or an
# utterance's statistics (adarl_jax.data.dataset.group_normalize)
NORMALIZE_MODES = ("segment", "speaker", "utterance")

# the config files ship inside the package (adarl_jax/configs/), so a name resolves the same
# from a wheel as from a clone; the checkout's top-level `configs` links to this folder
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _variant_info(config):
    """The config's registered variant, or None for an unknown one (which fails where the model
    is built, naming the known ones)."""
    try:
        return variant_of(config)
    except KeyError:
        return None


def _check_domain_pretraining(config) -> None:
    """optim.domain_pretrain_steps needs a domain pathway that the domain loss trains."""
    o = config.optim
    info = _variant_info(config)
    if int(o.get("domain_pretrain_steps", 0)) <= 0 or info is None:
        return
    problems = []
    if not info.uses_domain:
        problems.append(f"model.variant={config.model.variant!r} trains no domain head")
    if float(config.loss.domain_weight) <= 0:
        problems.append(f"loss.domain_weight={config.loss.domain_weight} gives it no loss")
    if float(o.domain_lr_scale) < 0:
        problems.append(f"optim.domain_lr_scale={o.domain_lr_scale} is negative")
    if float(o.ema_decay) > 0:
        problems.append("optim.ema_decay > 0 would average the pretraining's weights in")
    if problems:
        raise ValueError(f"optim.domain_pretrain_steps={o.domain_pretrain_steps}: "
                         + "; ".join(problems))


def validate(config: ml_collections.ConfigDict) -> None:
    """Fails early, naming the field, on settings that cannot work."""
    fe, m, d = config.frontend, config.model, config.data
    expect_frames = int(round(d.segment_s / fe.hop_s))
    if fe.n_frames != expect_frames:
        raise ValueError(
            f"frontend.n_frames={fe.n_frames} but data.segment_s/frontend.hop_s = {expect_frames}"
        )
    if not (float(d.segment_hop_s) == 0.0
            or 1 <= round(float(d.segment_hop_s) * d.sample_rate) <= round(d.segment_s * d.sample_rate)):
        raise ValueError(f"data.segment_hop_s={d.segment_hop_s}: expected 0 (no overlap), or one "
                         f"sample at {d.sample_rate} Hz up to data.segment_s={d.segment_s}")
    if float(d.trim_db) < 0:
        raise ValueError(f"data.trim_db={d.trim_db}: expected 0 (no trim) or a positive level")
    level = float(d.get("level_dbfs", 0.0))
    if not (math.isfinite(level) and level <= 0):
        raise ValueError(f"data.level_dbfs={d.level_dbfs}: expected 0 (as recorded) or a level "
                         "below full scale, e.g. -25")
    patience = float(config.train.get("patience_fraction", 0.0))
    if not 0.0 <= patience < 1.0:
        raise ValueError(f"train.patience_fraction={patience}: expected 0 (no early stop) or a "
                         "fraction of the schedule below 1")
    if fe.scale == "linear" and fe.n_bins > fe.n_fft // 2 + 1:
        raise ValueError(f"frontend.n_bins={fe.n_bins} exceeds n_fft//2+1={fe.n_fft // 2 + 1}")
    if fe.kind not in ("multi_window", "colormap"):
        raise ValueError(f"frontend.kind={fe.kind!r}: expected 'multi_window' or 'colormap'")
    if fe.scale not in ("linear", "mel"):
        raise ValueError(f"frontend.scale={fe.scale!r}: expected 'linear' or 'mel'")
    if fe.normalize not in NORMALIZE_MODES:
        raise ValueError(f"frontend.normalize={fe.normalize!r}: expected one of "
                         f"{', '.join(NORMALIZE_MODES)}")
    _check_domain_pretraining(config)
    views = tuple(config.augment.get("statistics_views", ()))
    if views and (fe.normalize != "speaker" or not set(views) <= {"utterance", "train"}
                  or len(set(views)) != len(views)):
        raise ValueError(f"augment.statistics_views={views}: expected distinct modes among "
                         "'utterance' and 'train', with frontend.normalize='speaker' (it is "
                         f"{fe.normalize!r})")
    if views and getattr(_variant_info(config), "uses_functionals", False):
        raise ValueError(f"augment.statistics_views={views} is for a spectrogram-only variant: "
                         f"model.variant={m.variant!r} also reads functionals, which the views "
                         "would leave standardised per speaker")
    speeds = tuple(config.augment.get("speeds", ()))
    if (not all(isinstance(v, (int, float)) and 0.5 <= v <= 2 and v != 1 for v in speeds)
            or len(set(speeds)) != len(speeds)):
        raise ValueError(f"augment.speeds={speeds}: expected distinct factors in [0.5, 2] other "
                         "than 1 (e.g. (0.9, 1.1)), or () for none")
    if speeds and getattr(_variant_info(config), "uses_functionals", False):
        raise ValueError(f"augment.speeds={speeds} is for a spectrogram-only variant: "
                         f"model.variant={m.variant!r} also reads functionals, which are not "
                         "computed for the played-faster copies")
    if fe.scale == "mel" and not 0 < fe.fmax_hz <= d.sample_rate / 2:
        raise ValueError(f"frontend.fmax_hz={fe.fmax_hz} must be in (0, data.sample_rate/2]")
    if len(m.block_features) != len(m.block_pools):
        raise ValueError("model.block_features and model.block_pools must have the same length")
    for i, feats in enumerate(m.block_features):
        if len(feats) != len(m.kernel_sizes):
            raise ValueError(f"model.block_features[{i}]={tuple(feats)} needs one channel count per "
                             f"kernel in model.kernel_sizes={tuple(m.kernel_sizes)}")
    h, w = fe.n_bins, fe.n_frames
    for i, (ph, pw) in enumerate(m.block_pools):
        if h % ph or w % pw:
            raise ValueError(
                f"model.block_pools[{i}]=({ph}, {pw}) does not divide the block's input "
                f"{h} x {w} (freq x time); choose pools whose product divides "
                f"frontend.n_bins={fe.n_bins} and frontend.n_frames={fe.n_frames}"
            )
        h, w = h // ph, w // pw
    if config.optim.optimizer not in ("sgd", "adamw"):
        raise ValueError(f"optim.optimizer={config.optim.optimizer!r}: expected 'sgd' or 'adamw'")
    if config.optim.schedule not in ("step", "cosine"):
        raise ValueError(f"optim.schedule={config.optim.schedule!r}: expected 'step' or 'cosine'")
    if len(set(d.genders)) != len(d.genders) or not d.genders:
        raise ValueError(f"data.genders={tuple(d.genders)}: the domain values must be distinct and "
                         "at least one")
    if d.other_emotions not in ("drop", "domain_only"):
        raise ValueError(f"data.other_emotions={d.other_emotions!r}: expected 'drop' or 'domain_only'")
    if d.get("domain", "column") not in ("column", "corpus", "corpus_column"):
        raise ValueError(f"data.domain={d.domain!r}: expected 'column', 'corpus' or 'corpus_column'")
    if not 0 <= config.loss.label_smoothing < 1:
        raise ValueError(f"loss.label_smoothing={config.loss.label_smoothing} must be in [0, 1)")
    if config.optim.batch_size < 1 or config.optim.epochs < 0:
        raise ValueError("optim.batch_size must be >= 1 and optim.epochs >= 0")
    if config.train.balance not in ("none", "class", "gender", "class_gender"):
        raise ValueError(f"train.balance={config.train.balance!r}: expected none|class|gender|class_gender")
    if config.train.loop not in ("auto", "scan", "step"):
        raise ValueError(f"train.loop={config.train.loop!r}: expected 'auto', 'scan' or 'step'")
    if config.train.selection not in ("last", "val"):
        raise ValueError(f"train.selection={config.train.selection!r}: expected 'last' or 'val'")


def input_shape(config: ml_collections.ConfigDict) -> tuple[int, int, int]:
    """(freq, time, channels) of one segment's spectrogram."""
    return (config.frontend.n_bins, config.frontend.n_frames, 3)


def load_python_file(spec: str, folder: Path, function: str, what: str):
    """`function` of the Python file `spec`: a path, or a name (no suffix) in `folder`."""
    path = Path(spec)
    if not path.suffix:
        path = Path(folder) / f"{spec}.py"
    if not path.exists():
        raise FileNotFoundError(f"{what} {spec!r}: no such file {path}")
    module_spec = importlib.util.spec_from_file_location(f"_adarl_{what}_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, function):
        raise ValueError(f"{what} file {path} has no {function}()")
    return getattr(module, function)


def load_config(spec: str | None, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    """Loads `spec` (a .py path, a name in adarl_jax/configs/, e.g. 'emodb', or a run's saved
    config.json) and applies overrides.

    Overrides are `key.sub=value` strings (the `--config.` prefix is optional); the value is
    parsed as a Python literal when possible and must keep the field's type.
    """
    if spec is None:
        config = base_config()
    elif str(spec).endswith(".json"):  # a run's saved <workdir>/config.json
        config = config_from_json(Path(spec).read_text())
    else:
        config = load_python_file(spec, CONFIG_DIR, "get_config", "config")()
    for item in overrides:
        apply_override(config, item)
    with_declared_settings(config)
    validate(config)
    return config


def _did_you_mean(name: str, choices, prefix: str = "") -> str:
    """'; did you mean X?' for the nearest of `choices` (difflib), or ''."""
    import difflib

    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {prefix + close[0]!r}?" if close else ""


def apply_override(config: ml_collections.ConfigDict, item: str) -> None:
    key, sep, raw = item.removeprefix("--").removeprefix("config.").partition("=")
    if not sep:
        raise ValueError(f"override {item!r}: expected key=value")
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
        if p not in node:
            raise KeyError(f"override {item!r}: no config section {p!r}"
                           + _did_you_mean(p, [k for k in node.keys()
                                               if isinstance(node[k], ml_collections.ConfigDict)]))
        node = node[p]
    declared = {}
    if leaf not in node and parents == ["model"]:  # a setting a registered variant declares
        declared = declared_settings(config)
    if leaf not in node and leaf not in declared:
        prefix = ".".join(parents) + "." if parents else ""
        raise KeyError(f"override {item!r}: no config field {key!r}"
                       + (" and no registered variant declares it" if parents == ["model"] else "")
                       + _did_you_mean(leaf, [*node.keys(), *declared], prefix))
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    old = node[leaf] if leaf in node else declared[leaf]
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(old, tuple) and isinstance(value, list):
        value = tuple(value)
    if old is not None and type(old) is not type(value):
        raise TypeError(f"override {item!r}: {key} is {type(old).__name__}, got {type(value).__name__}")
    with node.unlocked() if hasattr(node, "unlocked") else _null():
        node[leaf] = value
    if key == "model.variant_file":  # import it now: a bad file fails here, naming it
        load_variant_file(value, config.model.get("variant_sha256", ""))


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def to_json(config: ml_collections.ConfigDict) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=list)


# Fields whose default changed after runs were saved: a saved config without the field was
# trained with the value here, not with base_config's current default.
SAVED_BEFORE = {("model", "channelwise_init"): "joint"}


def config_from_json(text: str, folder=None) -> ml_collections.ConfigDict:
    """Rebuilds a config saved by `to_json` (lists become tuples, as in the base config), with
    its variant's settings (a config saved before they were all recorded gets the defaults).
    `folder`: where a relative `model.variant_file` lies (a model folder's own copy)."""

    def fix(v):
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return tuple(fix(x) for x in v)
        return v

    saved = fix(json.loads(text))
    for (section, key), value in SAVED_BEFORE.items():
        if isinstance(saved.get(section), dict):
            saved[section].setdefault(key, value)
    config = base_config()
    config.update(ml_collections.ConfigDict(saved))
    kept = config.model.get("variant_file", "")
    if folder is not None and kept and not os.path.isabs(kept):
        config.model["variant_file"] = os.path.join(folder, kept)
    with_declared_settings(config)
    return config


def default_data_dir(corpus: str) -> str:
    """../shared/data/<corpus> beside the checkout, if it is there."""
    here = Path(__file__).resolve().parent.parent  # the checkout, for an editable install
    for cand in (here.parent / "shared" / "data" / corpus, Path.cwd().parent / "shared" / "data" / corpus):
        if cand.exists():
            return os.fspath(cand)
    return ""
