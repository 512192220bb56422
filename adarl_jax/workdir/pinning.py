"""A workdir's config is its identity: a run with another model, recipe or data is refused.

`W/config.json` is written by the first run into W. A later run whose config differs in any
field that changes the trained function or the data (every field but those in `IGNORED`:
paths, progress, process and checkpointing settings, the variant) raises
`ConfigMismatchError` naming the fields, so that folds trained under one config are never
resumed, skipped or reported as another's. With `force_new_config`, everything a run wrote
into W (fold folders, reports, the old config.json) is moved to `W/superseded-<time>/` first;
the spectrogram cache stays (it is keyed by the settings that made it).

Each fold folder keeps the config it was trained with (`<fold>/config.json`, its variant filled
in), written before its training starts; `predict` and `export` read that one.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import time
from pathlib import Path

from adarl_jax.config import config_from_json, to_json
from adarl_jax.workdir.files import write_text_atomic
from adarl_jax.workdir.layout import result_path

CONFIG_FILE = "config.json"
SUPERSEDED_PREFIX = "superseded-"
# data.json: the fingerprint of the data the forcing run reads, written before it supersedes
KEEP_ON_SUPERSEDE = ("cache", ".locks", "data.json")

# fields that change neither the trained parameters nor the data, with the reason. Not here:
# train.eval_batch_size and train.loop, which compute the same function but round differently
# (probabilities differ in the last bit between inference batches of 1 and 8)
IGNORED = {
    "data.dir": "a path: the same corpus may move",
    "data.manifest": "a path: the same corpus may move",
    "model.variant": "one workdir holds several variants (each fold folder pins its own)",
    "model.variant_file": "a path: the kept copy's content is pinned by model.variant_sha256",
    "train.progress": "display only",
    "train.allow_missing_class": "whether a check refuses a fold, not what is trained",
    "train.keep_checkpoints": "how many checkpoints stay on disk",
    "train.checkpoint_every_steps": "when state is written, not what is trained",
    "log.": "what is logged (a section: every field in it)",
    "baselines.": "each baseline fold records its fitting rule and is refitted when it differs",
    "eval.": "what is reported after training (adarl_jax.train.test_statistics), not what is trained",
}


class ConfigMismatchError(ValueError):
    """A run's config differs from the one its workdir (or fold folder) was trained with."""


def flatten(tree: dict, prefix: str = "") -> dict:
    """{'section.field': value} with lists for tuples (as JSON keeps them)."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.loads(json.dumps(value, default=list))
    return out


def pinned_differences(old, new, ignore=IGNORED) -> list[tuple[str, object, object]]:
    """[(dotted field, old value, new value)] over the fields not in `ignore` (a name ending in
    '.' ignores a whole section), sorted."""
    a, b = flatten(old.to_dict()), flatten(new.to_dict())
    def ignored(k):
        return k in ignore or any(p.endswith(".") and k.startswith(p) for p in ignore)

    def unrecorded(k):  # saved before runs kept their variant file: nothing to compare
        return k == "model.variant_sha256" and k not in a

    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if not ignored(k) and not unrecorded(k) and a.get(k) != b.get(k)]


def format_differences(diffs) -> str:
    return ", ".join(f"{k} {json.dumps(o)} -> {json.dumps(n)}" for k, o, n in diffs)


def read_config(path: Path):
    try:
        return config_from_json(Path(path).read_text())
    except (OSError, ValueError, AttributeError, KeyError) as e:
        raise ConfigMismatchError(f"{path}: cannot read the saved config ({e}); move the file "
                                  "away if this folder is not a workdir of adarl-jax") from None


def workdir_differences(config, workdir) -> list:
    """The pinned fields in which `config` differs from `W/config.json` ([] when W has none)."""
    path = Path(workdir) / CONFIG_FILE
    return pinned_differences(read_config(path), config) if path.exists() else []


def restoring_overrides(diffs) -> str:
    """The command-line overrides that give a run the workdir's values back, shell-quoted; ''
    unless every differing field is outside data.* (other data wants a workdir of its own),
    is one the run's config has, and holds a scalar that an override spells exactly."""
    items = []
    for key, old, new in diffs:
        spelled = _override_spelling(old)
        if key.startswith("data.") or key == "model.variant_sha256" or new is None or spelled is None:
            return ""
        items.append(shlex.quote(f"--config.{key}={spelled}"))
    return " ".join(items)


def _override_spelling(value) -> str | None:
    """How an override (config.apply_override: a Python literal, else the text itself) writes
    `value`, or None for a value it cannot give back (not a scalar, nan, inf)."""
    if not isinstance(value, (bool, int, float, str)):
        return None
    for text in (str(value), repr(value)):
        try:
            back = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            back = text
        if type(back) is type(value) and back == value:
            return text
    return None


def mismatch_message(workdir, diffs) -> str:
    back = restoring_overrides(diffs)
    back = f", or pass {back} to go on under the workdir's config" if back else ""
    return (f"{Path(workdir) / CONFIG_FILE}: this run's config differs from the one the workdir "
            f"was trained with, in fields that change the model or the data: "
            f"{format_differences(diffs)}. Its finished folds would be kept as this run's. Use a "
            f"new --workdir, pass --force-new-config to move everything trained under the old "
            f"config to {Path(workdir) / (SUPERSEDED_PREFIX + '<time>')}/ and start afresh{back}")


def check_workdir_config(config, workdir, force: bool = False) -> list:
    """Raises ConfigMismatchError when the workdir's config differs (unless `force`); returns
    the differences."""
    diffs = workdir_differences(config, workdir)
    if diffs and not force:
        raise ConfigMismatchError(mismatch_message(workdir, diffs))
    return diffs


def supersede(workdir) -> Path | None:
    """Moves everything in the workdir but the cache, the locks and earlier superseded folders
    into a new `superseded-<time>/`; returns it (None when there was nothing to move)."""
    workdir = Path(workdir)
    entries = [p for p in sorted(workdir.iterdir())
               if p.name not in KEEP_ON_SUPERSEDE and not p.name.startswith(SUPERSEDED_PREFIX)]
    if not entries:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = workdir / f"{SUPERSEDED_PREFIX}{stamp}", 1
    while target.exists():
        n += 1
        target = workdir / f"{SUPERSEDED_PREFIX}{stamp}-{n}"
    target.mkdir()
    for p in entries:
        os.rename(p, target / p.name)
    return target


def write_workdir_config(config, workdir) -> None:
    write_text_atomic(Path(workdir) / CONFIG_FILE, to_json(config))


def pin_fold_config(config, fold_dir, write: bool = True) -> None:
    """Checks a fold folder's own config against `config` (the variant included) and writes
    it when the fold has none and has not finished (a finished fold without one was trained by
    an older version: what it was trained with is not known, so nothing is claimed)."""
    fold_dir = Path(fold_dir)
    path = fold_dir / CONFIG_FILE
    if path.exists():
        ignore = {k: v for k, v in IGNORED.items() if k != "model.variant"}
        diffs = pinned_differences(read_config(path), config, ignore)
        if diffs:
            raise ConfigMismatchError(
                f"{path}: fold folder {fold_dir} was trained with another config "
                f"({format_differences(diffs)}); use a new --workdir, or --force-new-config")
    elif write and not result_path(fold_dir).exists():
        write_text_atomic(path, to_json(config))
