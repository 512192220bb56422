"""Orbax behind one small class, so its API churn touches only this file.

One `FoldCheckpointer` per LOSO fold: a checkpoint per epoch (keep the last N), each holding
the train state and a JSON record (epoch, selection state).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import orbax.checkpoint as ocp


class FoldCheckpointer:
    def __init__(self, directory, keep: int = 2):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max(int(keep), 1), create=True)
        self._manager = ocp.CheckpointManager(os.fspath(self.directory), options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state, meta: dict) -> None:
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))

    def restore(self, template_state, step: int | None = None):
        """(state, meta) at `step` (default: latest), placed like `template_state`."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template_state)
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        return restored["state"], dict(restored["meta"])

    def restore_meta(self, step: int | None = None) -> dict:
        step = self.latest_step() if step is None else step
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored["meta"])

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
