"""The training speakers' pooled statistics a speaker-normalised model keeps beside itself
(`train_statistics.npz` in a fold folder and in a model folder), so that `predict
--speaker-from training` can standardise an input without any audio of its speaker.

Arrays: 'mean' and 'std' (F, 1, C) of the log spectrogram, 'frames' (how many frames gave
them) and, for a model that reads functionals, 'functionals_mean' and 'functionals_std'.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from adarl_jax.workdir.files import write_bytes_atomic

__all__ = ["STATISTICS_FILE", "statistics_bytes", "write_statistics", "read_statistics"]

STATISTICS_FILE = "train_statistics.npz"


def statistics_bytes(stats: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in stats.items()})
    return buf.getvalue()


def write_statistics(folder, stats: dict) -> None:
    write_bytes_atomic(Path(folder) / STATISTICS_FILE, statistics_bytes(stats))


def read_statistics(folder) -> dict | None:
    """The statistics kept in `folder`, None when it has none (a model trained before they
    were kept, or one not standardised per speaker). An unreadable file is a ValueError
    naming it."""
    path = Path(folder) / STATISTICS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            stats = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable npz file ({e})") from None
    if not {"mean", "std"} <= set(stats):
        raise ValueError(f"{path}: lacks 'mean' or 'std'")
    return stats
