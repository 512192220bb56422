"""Trained folds of a workdir: which checkpoint serves a fold, and its restored variables.

A workdir W holds W/config.json and W/<variant>/fold_<kk>_<speaker>/{checkpoints,best,
result.json}; `find_fold` also accepts a variant folder or a fold folder. The checkpoint used
is the one the fold's result reports (the last epoch, or the best validation epoch under
train.selection='val'); a fold that has not finished serves its latest checkpoint, with a
warning. `restore_variables` checks the stored shapes against the run's config first, so a
mismatch is reported as the arrays that differ rather than as an orbax error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import jax

from adarl_jax.train.checkpoint import FoldCheckpointer, abstract_train_state, shape_problems, tree_shapes
from adarl_jax.config import config_from_json
from adarl_jax.model.registry import use_variant
from adarl_jax.workdir.layout import fold_dirs, parse_fold_name, result_path

__all__ = ["CheckpointError", "FoldRef", "find_fold", "restore_variables"]

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot serve this config (wrong shapes, variant, layout)."""


@dataclasses.dataclass(frozen=True)
class FoldRef:
    """One trained fold and the checkpoint step to use."""

    workdir: Path
    variant: str
    fold: int
    speaker: str
    fold_dir: Path
    checkpoint_dir: Path
    step: int
    finished: bool

    def describe(self) -> str:
        state = "" if self.finished else ", unfinished"
        return f"{self.variant} fold {self.fold} ({self.speaker}, epoch {self.step}{state})"


def _fold_dirs(variant_dir: Path) -> dict[int, Path]:
    # baseline folds (openSMILE + SVM) hold no network checkpoint: not servable here
    return {k: d for k, d in fold_dirs(variant_dir).items()
            if (d / "checkpoints").is_dir() or (d / "best").is_dir()}


def _workdir_of(path: Path) -> tuple[Path, str | None, int | None]:
    """(workdir, variant, fold) named by a workdir, a fold folder or its checkpoints folder."""
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path}: no such file or folder")
    if (path / "config.json").is_file() and not parse_fold_name(path.name):
        return path, None, None
    if path.name in ("checkpoints", "best"):
        path = path.parent
    parsed = parse_fold_name(path.name)
    if parsed and (path.parent.parent / "config.json").is_file():
        return path.parent.parent, path.parent.name, parsed[0]
    if (path.parent / "config.json").is_file() and _fold_dirs(path):  # W/<variant>
        return path.parent, path.name, None
    raise FileNotFoundError(
        f"checkpoint {path}: not a trained workdir (no config.json), variant folder or fold "
        f"folder (<workdir>/<variant>/fold_<k>_<speaker>); train one with `adarl-jax train "
        f"--workdir W`")


def _latest_step(directory: Path) -> int | None:
    if not directory.is_dir():
        return None
    return FoldCheckpointer(directory).latest_step()


def _fold_ref(workdir: Path, variant: str, fold: int, fold_dir: Path) -> FoldRef:
    speaker = parse_fold_name(fold_dir.name)[1]
    result_file = result_path(fold_dir)
    finished = result_file.is_file()
    result = json.loads(result_file.read_text()) if finished else {}
    ckpt_dir = fold_dir / "checkpoints"
    step = None
    if result.get("selection") == "val" and (fold_dir / "best").is_dir():
        ckpt_dir = fold_dir / "best"
        step = result.get("selected_epoch")
    if step is None or step < 0:
        step = _latest_step(ckpt_dir)
    if step is None:
        raise FileNotFoundError(
            f"{variant} fold {fold} ({speaker}): no checkpoint in {ckpt_dir} "
            f"(training stopped before its first epoch ended?)")
    if not finished:
        log.warning("%s fold %d (%s) has not finished training (no result.json): using its "
                    "latest checkpoint, epoch %d", variant, fold, speaker, step)
    return FoldRef(workdir, variant, fold, speaker, fold_dir, ckpt_dir, int(step), finished)


def find_fold(path, variant: str | None = None, fold: int | str | None = None) -> list[FoldRef]:
    """The fold(s) a checkpoint argument names. `fold='all'` gives every trained fold.

    Raises FileNotFoundError naming what is missing (workdir, variant, fold, checkpoint) and
    what is there instead.
    """
    workdir, path_variant, path_fold = _workdir_of(Path(path))
    variant = variant or path_variant
    fold = path_fold if fold is None else fold
    trained = {d.name: _fold_dirs(d) for d in sorted(workdir.iterdir()) if d.is_dir()}
    trained = {v: f for v, f in trained.items() if f}
    if not trained:
        raise FileNotFoundError(f"{workdir}: no trained folds (<variant>/fold_<k>_<speaker>/)")
    if variant is None:
        config_variant = config_from_json((workdir / "config.json").read_text()).model.variant
        if len(trained) == 1:
            variant = next(iter(trained))
        elif config_variant in trained:
            variant = config_variant
        else:
            raise FileNotFoundError(f"{workdir} holds several variants {sorted(trained)}: "
                                    "choose one with --variant")
    if variant not in trained:
        raise FileNotFoundError(f"{workdir}: no trained folds of variant {variant!r}; "
                                f"trained variants: {sorted(trained)}")
    folds = trained[variant]
    listing = ", ".join(f"{k} ({parse_fold_name(d.name)[1]})" for k, d in folds.items())
    if fold is None:
        if len(folds) != 1:
            raise FileNotFoundError(
                f"{workdir}/{variant} holds {len(folds)} folds [{listing}]: choose one with "
                "--fold K, or --fold all for the mean of their probabilities")
        fold = next(iter(folds))
    if fold == "all":
        return [_fold_ref(workdir, variant, k, d) for k, d in folds.items()]
    fold = int(fold)
    if fold not in folds:
        raise FileNotFoundError(f"{workdir}/{variant}: no fold {fold}; trained folds: [{listing}]")
    return [_fold_ref(workdir, variant, fold, folds[fold])]


def _run_config(ref: FoldRef):
    # A fold's own config.json (if the trainer wrote one) wins over the workdir's, which a
    # later run with other settings may have overwritten.
    path = ref.fold_dir / "config.json"
    if not path.is_file():
        path = ref.workdir / "config.json"
    config = config_from_json(path.read_text())
    use_variant(config, ref.variant)
    return config, path


def _check_shapes(ref: FoldRef, config, config_path: Path, abstract) -> None:
    stored = FoldCheckpointer(ref.checkpoint_dir).stored_shapes(ref.step)
    if stored is None:
        return
    wanted = tree_shapes({"params": abstract.params, "batch_stats": abstract.batch_stats})
    stored = {k: v for k, v in stored.items() if k.startswith(("params/", "batch_stats/"))}
    problems = shape_problems(wanted, stored)
    if problems:
        m = config.model
        raise CheckpointError(
            f"checkpoint {ref.checkpoint_dir} (step {ref.step}) was not trained with the config "
            f"{config_path} (model.variant={m.variant!r}, model.hidden={m.hidden}, "
            f"frontend {config.frontend.n_bins}x{config.frontend.n_frames}, "
            f"{len(config.data.classes)} classes): " + "; ".join(problems[:4]))


def restore_variables(ref: FoldRef):
    """(config, {'params', 'batch_stats'} as numpy arrays) of one trained fold."""
    config, config_path = _run_config(ref)
    abstract = abstract_train_state(config)
    _check_shapes(ref, config, config_path, abstract)
    ckpt = FoldCheckpointer(ref.checkpoint_dir)
    try:
        state, _ = ckpt.restore(abstract, ref.step)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {ref.checkpoint_dir} (step {ref.step}) does not match "
                              f"the config {config_path}: {e}") from e
    finally:
        ckpt.close()
    variables = jax.device_get(state.eval_variables)
    return config, variables
