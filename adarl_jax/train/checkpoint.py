"""Orbax behind one small class, so its API churn touches only this file.

One `FoldCheckpointer` per LOSO fold: a checkpoint per epoch (keep the last N), each holding
the train state and a JSON record (epoch, selection state). Beside it, the shapes a config's
model needs (`abstract_train_state`, `tree_shapes`) and what differs from stored ones
(`shape_problems`, `FoldCheckpointer.stored_shapes`), so that a mismatch is reported as the
arrays that differ rather than as an orbax error.

Every checkpoint is verified when it is read back, in two ways:
- the JSON record carries a SHA-256 over the state's arrays (path, dtype, shape and bytes of
  every leaf), computed from the arrays being saved and compared with the restored ones;
- once a save has finished, `integrity/<step>.json` beside the step folders lists every file
  of the step with its size and SHA-256, so that a truncated, missing or altered file is named.
A damaged checkpoint raises `CheckpointCorruptError` (one paragraph: fold folder, epoch, file),
and `restore()` without an explicit step falls back to the newest intact one, moving the
damaged ones aside to `<fold>/corrupt-checkpoints/` so that training can write them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from adarl_jax.train.train_step import create_train_state_from_config
from adarl_jax.workdir.files import file_sha256, write_json_atomic
from adarl_jax.termination import uninterrupted

log = logging.getLogger(__name__)

CHECKSUM_KEY = "_arrays_sha256"
INTEGRITY_DIR = "integrity"


class CheckpointCorruptError(RuntimeError):
    """A checkpoint's files or arrays are not the ones that were saved."""


def _host_array(x) -> np.ndarray:
    """The leaf's values on this host (a replicated array spread over processes: its local copy)."""
    if isinstance(x, jax.Array):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        if not x.is_fully_addressable:
            x = x.addressable_shards[0].data
    return np.ascontiguousarray(np.asarray(x))


def arrays_checksum(tree) -> str:
    """SHA-256 over every leaf's tree path, dtype, shape and bytes, in tree order."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = _host_array(leaf)
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def file_manifest(step_dir: Path) -> dict[str, dict]:
    """{relative path: {'size', 'sha256'}} of every file under a finished step folder."""
    out = {}
    for root, _, files in os.walk(step_dir):
        for name in files:
            p = Path(root) / name
            out[p.relative_to(step_dir).as_posix()] = {"size": p.stat().st_size,
                                                       "sha256": file_sha256(p)}
    return dict(sorted(out.items()))


def manifest_problem(step_dir: Path, manifest: dict[str, dict]) -> str | None:
    """What is wrong with the files of `step_dir` against `manifest` (None: all intact)."""
    for rel, want in manifest.items():
        p = step_dir / rel
        if not p.is_file():
            return f"file {rel} is missing"
        size = p.stat().st_size
        if size != want["size"]:
            return f"file {rel} is truncated or overwritten ({size} bytes, {want['size']} saved)"
        if file_sha256(p) != want["sha256"]:
            return f"file {rel} was altered (its SHA-256 differs from the one saved with it)"
    return None


def tree_key(path) -> str:
    """'params/block1/conv/kernel': a tree path as one string (dict keys and list indices)."""
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def tree_shapes(tree) -> dict[str, tuple]:
    """{tree_key: shape} of every leaf."""
    return {tree_key(p): tuple(v.shape) for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def abstract_train_state(config):
    """The TrainState's shapes and dtypes, as the trainer builds it, without computing anything."""
    key = jax.random.key(0, impl="rbg")
    return jax.eval_shape(lambda k: create_train_state_from_config(config, k, 1)[1], key)


def shape_problems(wanted: dict[str, tuple], stored: dict[str, tuple],
                   where: str = "checkpoint") -> list[str]:
    """What differs between the shapes a config's model needs and those stored in `where`
    (both {tree_key: shape}): differing shapes (parameters first), missing and extra arrays."""
    problems = [f"{k}: {where} {stored[k]}, config {wanted[k]}"
                for k in sorted(wanted, key=lambda k: (not k.startswith("params/"), k))
                if k in stored and stored[k] != wanted[k]]
    missing = sorted(set(wanted) - set(stored))
    extra = sorted(set(stored) - set(wanted))
    if missing:
        problems.append(f"{len(missing)} array(s) the config's model needs are not in the "
                        f"{where}, e.g. {missing[0]}")
    if extra:
        problems.append(f"{len(extra)} array(s) in the {where} are not in the config's model, "
                        f"e.g. {extra[0]}")
    return problems


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


class FoldCheckpointer:
    def __init__(self, directory, keep: int = 2):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max(int(keep), 1), create=True)
        self._manager = ocp.CheckpointManager(os.fspath(self.directory), options=options)
        self._unsealed: list[int] = []  # saved, but their file manifest is not written yet

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state, meta: dict) -> None:
        with uninterrupted():  # SIGTERM waits until orbax has the save in hand
            self._seal()  # the previous save is complete before orbax starts this one
            meta = {**meta, CHECKSUM_KEY: arrays_checksum(state)}
            self._manager.save(step, args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
            self._unsealed.append(int(step))

    def _seal(self) -> None:
        """Writes the file manifest of every finished save, and drops those of pruned steps."""
        if not self._unsealed:
            return
        self._manager.wait_until_finished()
        if jax.process_index() != 0:
            self._unsealed.clear()
            return
        steps = set(self._manager.all_steps())
        for step in self._unsealed:
            if step in steps:
                write_json_atomic(self._integrity_path(step), file_manifest(self._step_dir(step)))
        self._unsealed.clear()
        for path in (self.directory / INTEGRITY_DIR).glob("*.json"):
            if path.stem.isdigit() and int(path.stem) not in steps:
                path.unlink(missing_ok=True)

    def _step_dir(self, step: int) -> Path:
        return self.directory / str(step)

    def _integrity_path(self, step: int) -> Path:
        return self.directory / INTEGRITY_DIR / f"{step}.json"

    def _where(self, step: int) -> str:
        return (f"checkpoint of fold folder {self.directory.parent}, epoch {step} "
                f"({self.directory.name}/{step})")

    def _check_files(self, step: int) -> None:
        path = self._integrity_path(step)
        if not path.is_file():
            return  # saved by an older version, or killed before sealing: arrays still checked
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointCorruptError(f"{self._where(step)}: its file list {path} is "
                                         f"unreadable ({_first_line(e)})") from None
        problem = manifest_problem(self._step_dir(step), manifest)
        if problem:
            raise CheckpointCorruptError(f"{self._where(step)}: {problem}")

    def _restore_verified(self, template_state, step: int):
        self._check_files(step)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template_state)
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        except (ValueError, KeyError, TypeError):
            raise  # the files are readable but hold another model: not damage, the caller's case
        except Exception as e:  # tensorstore/orbax read failures: missing or truncated data
            raise CheckpointCorruptError(
                f"{self._where(step)}: a data file under {self._step_dir(step)} cannot be read "
                f"({_first_line(e)})") from None
        meta = dict(restored["meta"])
        saved = meta.pop(CHECKSUM_KEY, None)
        if saved is not None and arrays_checksum(restored["state"]) != saved:
            raise CheckpointCorruptError(
                f"{self._where(step)}: the restored arrays differ from the checksum saved with "
                f"them; a data file under {self._step_dir(step)} was altered")
        return restored["state"], meta

    def restore(self, template_state, step: int | None = None):
        """(state, meta) at `step` (default: the latest intact one), placed like `template_state`.

        Raises CheckpointCorruptError for a damaged explicit `step`. Without `step`, a damaged
        checkpoint is logged, moved aside, and the previous one is tried; the error is raised
        only when none is intact."""
        self._seal()
        if step is not None:
            return self._restore_verified(template_state, step)
        steps = self.all_steps()
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        problems = []
        for s in reversed(steps):
            try:
                out = self._restore_verified(template_state, s)
            except CheckpointCorruptError as e:
                problems.append(str(e))
                older = [t for t in steps if t < s]
                log.warning("%s. %s", e, f"Falling back to the checkpoint of epoch {older[-1]}; "
                            f"the damaged one is moved to {self._aside_dir()}" if older else
                            "No older checkpoint is left.")
                self._move_aside(s)
                continue
            return out
        raise CheckpointCorruptError(
            f"fold folder {self.directory.parent}: no intact checkpoint is left in "
            f"{self.directory.name}/ ({'; '.join(problems)}); the damaged ones are in "
            f"{self._aside_dir()}. Delete {self.directory} to train this fold again from the start")

    def _aside_dir(self) -> Path:
        return self.directory.parent / "corrupt-checkpoints"

    def _move_aside(self, step: int) -> None:
        if jax.process_index() != 0:
            return
        target = self._aside_dir() / f"{self.directory.name}-{step}-{time.strftime('%Y%m%d-%H%M%S')}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(os.fspath(self._step_dir(step)), os.fspath(target))
        self._integrity_path(step).unlink(missing_ok=True)
        self._manager.reload()

    def stored_shapes(self, step: int) -> dict[str, tuple] | None:
        """{'params/...': shape} of a saved state, read from orbax's metadata without reading
        the arrays (None if unreadable: a diagnosis only, the restore reports the failure)."""
        try:
            from etils import epath

            meta = ocp.StandardCheckpointHandler().metadata(
                epath.Path(self._step_dir(step) / "state"))
            leaves = jax.tree_util.tree_flatten_with_path(meta.tree)[0]
            return {tree_key(p): tuple(v.shape) for p, v in leaves if hasattr(v, "shape")}
        except Exception as e:
            log.debug("could not read checkpoint metadata of %s: %s", self._step_dir(step), e)
            return None

    def wait(self) -> None:
        with uninterrupted():
            self._manager.wait_until_finished()
            self._seal()

    def close(self) -> None:
        with uninterrupted():
            self._manager.wait_until_finished()
            self._seal()
            self._manager.close()
