"""TensorBoard event files of a fold's epoch records (`log.tensorboard=True`).

One scalar per metric per epoch, tagged `train/<metric>` or `val/<metric>`, x-axis the epoch,
in `<fold folder>/tensorboard/`, so that `tensorboard --logdir <workdir>` shows every variant
and fold as its own run. The writer is tensorboardX, an optional extra
(`pip install 'adarl-jax[tensorboard]'`); `metrics.jsonl` holds the same records either way.
"""

from __future__ import annotations

import numbers
from pathlib import Path

SKIP = ("epoch", "step", "time_s")


def scalars_of(record: dict) -> dict[str, float]:
    """The record's numeric metrics as TensorBoard tags: train_loss -> train/loss."""
    out = {}
    for key, value in record.items():
        if key in SKIP or isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        split, _, name = key.partition("_")
        out[f"{split}/{name}" if name else key] = float(value)
    return out


class ScalarLog:
    """Writes each epoch record's scalars; a resumed fold purges events from its first epoch
    on, so that a rerun epoch is not drawn twice."""

    def __init__(self, folder: Path, start_epoch: int = 0):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise ImportError(
                "log.tensorboard=True writes TensorBoard event files with tensorboardX, which is "
                "not installed: pip install 'adarl-jax[tensorboard]' (or tensorboardX), or set "
                "--config.log.tensorboard=False") from e
        self.writer = SummaryWriter(str(folder), purge_step=start_epoch or None)

    def write(self, record: dict) -> None:
        for tag, value in scalars_of(record).items():
            self.writer.add_scalar(tag, value, global_step=int(record["epoch"]))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def open_scalar_log(config, fold_dir, start_epoch: int = 0) -> ScalarLog | None:
    """The fold's event writer when the config asks for one, else None."""
    log = config.get("log")
    if log is None or not log.get("tensorboard", False):
        return None
    return ScalarLog(Path(fold_dir) / "tensorboard", start_epoch)
