"""A model folder: one trained model that restores without the workdir it was trained in.

  <folder>/params.npz    the evaluated variables as flat arrays, keyed 'params/<module>/.../
                         <name>' and 'batch_stats/...' (numpy alone reads them)
  <folder>/config.json   the config it was trained with (front end, model, classes)
  <folder>/model.json    what it is: format and version, variant, classes, domains, how its
                         epochs were chosen, training speakers, parameter count, files' SHA-256
  <folder>/MODEL.md      the model card (adarl_jax.report.model_card)
  <folder>/train_statistics.npz  a speaker-normalised model's training speakers' pooled
                         statistics (`predict --speaker-from training`), when it has them

A seed ensemble (`train --final --ensemble N`, format_version 2) records
`ensemble: {members, seeds, combination}` in model.json and stacks its members' arrays in
params.npz on a leading axis of size N; `Predictor` averages their class probabilities.
A late fusion (format_version 3) adds `late_fusion.npz`, the linear SVMs on the recording's
openSMILE functionals whose probabilities `Predictor.load` averages with the CNN's
(adarl_jax.inference.late_fusion), and records `late_fusion` in model.json; format_version 4
adds the globally standardised SVMs that score small speaker groups (`late_fusion.global_below`).

A folder is written in a staging folder beside it (`.<name>.partial/`) and renamed into place
at the end, so a folder named `<name>` is always complete; `model.json` is the mark of one.
Reading checks the files, the format version and every array's shape against the config, and
raises `ModelFolderError` (a ValueError) naming the file and the problem.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import jax
import numpy as np

from adarl_jax.train.checkpoint import abstract_train_state, shape_problems, tree_key, tree_shapes
from adarl_jax.config import config_from_json, to_json
from adarl_jax.workdir.kept_variant import keep_variant_file
from adarl_jax.workdir.statistics_file import STATISTICS_FILE, read_statistics, statistics_bytes
from adarl_jax.workdir.files import digest, write_bytes_atomic, write_json_atomic, write_text_atomic
from adarl_jax.inference.fold_models import CheckpointError

FORMAT = "adarl-jax-model"
FORMAT_VERSION = 4  # the newest this code reads; a single model is written as 1
ENSEMBLE_FORMAT_VERSION = 2  # model.json's `ensemble`: parameters stacked on a leading axis
LATE_FUSION_FORMAT_VERSION = 4  # model.json's `late_fusion` (with `global_below`) and late_fusion.npz
PARAMS_FILE, CONFIG_FILE, MODEL_FILE, CARD_FILE = "params.npz", "config.json", "model.json", "MODEL.md"
REQUIRED = (MODEL_FILE, CONFIG_FILE, PARAMS_FILE)


class ModelFolderError(CheckpointError):
    """A model folder that cannot serve: a file missing or unreadable, an unknown format
    version, or parameters whose shapes disagree with its config."""


def flat_arrays(variables) -> dict[str, np.ndarray]:
    """{'params/...': array} of {'params', 'batch_stats'}."""
    return {tree_key(p): np.asarray(v) for p, v in
            jax.tree_util.tree_flatten_with_path(jax.device_get(variables))[0]}


def staging_dir(folder) -> Path:
    folder = Path(folder)
    return folder.with_name(f".{folder.name}.partial")


def check_target(folder, overwrite: bool = False) -> None:
    """Refuses a folder that holds a complete model (unless `overwrite`) or anything else."""
    folder = Path(folder)
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return
    if not (folder / MODEL_FILE).is_file():
        raise FileExistsError(f"{folder} exists and is not a model folder (no {MODEL_FILE}): "
                              "choose another output folder")
    if not overwrite:
        raise FileExistsError(f"{folder} already holds a complete model ({folder / MODEL_FILE}); "
                              "pass overwrite=True (train --overwrite-final) to replace it")


def write_model_folder(folder, config, variables, record: dict, card: str,
                       overwrite: bool = False, statistics: dict | None = None,
                       extra_files: dict[str, bytes] | None = None) -> dict:
    """Writes the folder through its staging folder; returns `record` with its files' hashes
    (as model.json holds it). `statistics`: a speaker-normalised model's training statistics
    (`train_statistics.npz`, adarl_jax.workdir.statistics_file); `extra_files` {name: bytes}:
    more files the record vouches for (a late fusion's SVMs). The staging folder's other
    contents (training checkpoints) are removed once the folder is in place."""
    folder = Path(folder)
    check_target(folder, overwrite)
    staging = staging_dir(folder)
    ready = staging / "model"
    shutil.rmtree(ready, ignore_errors=True)
    ready.mkdir(parents=True)
    config = config.copy_and_resolve_references()
    keep_variant_file(config, ready, relative=True)  # the folder holds the variant it was built with
    buf = io.BytesIO()
    np.savez(buf, **flat_arrays(variables))
    params, config_text = buf.getvalue(), to_json(config)
    write_bytes_atomic(ready / PARAMS_FILE, params)
    write_text_atomic(ready / CONFIG_FILE, config_text)
    write_text_atomic(ready / CARD_FILE, card)
    files = {PARAMS_FILE: digest(params), CONFIG_FILE: digest(config_text.encode())}
    if statistics is not None:  # a speaker-normalised model's training statistics
        kept = statistics_bytes(statistics)
        write_bytes_atomic(ready / STATISTICS_FILE, kept)
        files[STATISTICS_FILE] = digest(kept)
    for name, data in (extra_files or {}).items():
        write_bytes_atomic(ready / name, data)
        files[name] = digest(data)
    record = {**record, "files": files}
    write_json_atomic(ready / MODEL_FILE, record)  # last: the mark of a complete folder
    if folder.exists():
        shutil.rmtree(folder)  # check_target allowed it: an empty folder or an old model
    os.replace(ready, folder)
    shutil.rmtree(staging, ignore_errors=True)
    return record


def _read(folder: Path, name: str) -> bytes:
    path = folder / name
    if not path.is_file():
        raise ModelFolderError(f"{path}: missing; a model folder holds {', '.join(REQUIRED)} "
                               "(adarl_jax.experiments.final_model.train_final writes one)")
    return path.read_bytes()


def checked_file(folder, name: str, meta: dict) -> bytes:
    """The bytes of a folder's file, checked against model.json's size and SHA-256."""
    data = _read(Path(folder), name)
    _check_hash(Path(folder), name, data, meta)
    return data


def _check_hash(folder: Path, name: str, data: bytes, meta: dict) -> None:
    """Every file is checked: a record without the file's size and hash cannot vouch for it."""
    files = meta.get("files")
    want = files.get(name) if isinstance(files, dict) else None
    if not isinstance(want, dict) or not {"bytes", "sha256"} <= set(want):
        raise ModelFolderError(f"{folder / MODEL_FILE}: records no size and SHA-256 of {name} "
                               f"(its 'files' entry is {'missing' if files is None else 'incomplete'})"
                               f", so {folder / name} cannot be checked; write the folder again "
                               "(train --final --overwrite-final)")
    if digest(data) != want:
        raise ModelFolderError(f"{folder / name}: altered or truncated ({len(data)} bytes; "
                               f"{MODEL_FILE} records {want['bytes']} bytes and another SHA-256)")


def read_meta(folder) -> dict:
    """model.json of a folder, its format and version checked."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: no such model folder")
    path = folder / MODEL_FILE
    try:
        meta = json.loads(_read(folder, MODEL_FILE))
    except ValueError as e:
        raise ModelFolderError(f"{path}: not valid JSON ({e})") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFolderError(f"{path}: not a model record (format must be {FORMAT!r})")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        found = "missing" if "format_version" not in meta else f"{json.dumps(version)}"
        raise ModelFolderError(f"{path}: format_version is {found}; adarl-jax writes a whole "
                               f"number of at least 1 (this one reads up to {FORMAT_VERSION}), so "
                               "the file was edited or damaged: "
                               "write the folder again (train --final --overwrite-final)")
    if version > FORMAT_VERSION:
        raise ModelFolderError(f"{path}: format_version {version} is newer than this adarl-jax "
                               f"reads (1 to {FORMAT_VERSION}); a newer adarl-jax wrote it: "
                               "upgrade adarl-jax")
    return meta


def folder_statistics(folder, meta: dict) -> dict | None:
    """The folder's training statistics (None when it keeps none), its hash checked."""
    folder = Path(folder)
    if STATISTICS_FILE not in meta.get("files", {}):
        return None
    _check_hash(folder, STATISTICS_FILE, _read(folder, STATISTICS_FILE), meta)
    try:
        return read_statistics(folder)
    except ValueError as e:
        raise ModelFolderError(str(e)) from None


def ensemble_members(meta: dict) -> int:
    """How many models a folder's arrays stack (1: a single model), from model.json."""
    ensemble = meta.get("ensemble")
    if ensemble is None:
        return 1
    members = ensemble.get("members") if isinstance(ensemble, dict) else None
    if isinstance(members, bool) or not isinstance(members, int) or members < 2:
        raise ModelFolderError(f"{MODEL_FILE}: ensemble.members must be a whole number of at "
                               f"least 2, not {json.dumps(members)}: the file was edited or "
                               "damaged; write the folder again (train --final --overwrite-final)")
    return members


def read_model_folder(folder):
    """(config, {'params', 'batch_stats'} as numpy arrays, model.json) of a model folder; an
    ensemble's arrays have a leading axis of `ensemble_members(model.json)`."""
    folder = Path(folder)
    meta = read_meta(folder)
    members = ensemble_members(meta)
    config_bytes = _read(folder, CONFIG_FILE)
    _check_hash(folder, CONFIG_FILE, config_bytes, meta)
    try:
        config = config_from_json(config_bytes.decode(), folder)  # its own copy of a variant file
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as e:
        raise ModelFolderError(f"{folder / CONFIG_FILE}: not a readable config ({e})") from None
    params = _read(folder, PARAMS_FILE)
    _check_hash(folder, PARAMS_FILE, params, meta)
    try:
        with np.load(io.BytesIO(params), allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ModelFolderError(f"{folder / PARAMS_FILE}: not a readable npz file ({e})") from None
    abstract = abstract_train_state(config)
    template = {"params": abstract.params, "batch_stats": abstract.batch_stats}
    lead = (members,) if members > 1 else ()
    problems = shape_problems({k: (*lead, *s) for k, s in tree_shapes(template).items()},
                              {k: v.shape for k, v in stored.items()}, PARAMS_FILE)
    if problems:
        raise ModelFolderError(f"{folder / PARAMS_FILE}: its arrays do not fit the model of "
                               f"{folder / CONFIG_FILE} (model.variant={config.model.variant!r}"
                               + (f", an ensemble of {members}" if members > 1 else "") + "): "
                               + "; ".join(problems[:4]))
    variables = jax.tree_util.tree_map_with_path(
        lambda p, a: stored[tree_key(p)].astype(a.dtype), template)
    return config, variables, meta
