"""The functions a job's runs share, built once, so that only a variant's first fold compiles.

jax caches a jitted function's tracing and compilation by the identity of the Python function
it wraps. A fold that builds its own train step and prediction function (closures over the
model, the optimiser, the schedule) therefore traces and compiles them again, even where they
are the same program as the fold before's: about 1.5 s a fold on the 2-core host, from the
persistent cache. `Programs` hands every run of a job the one function built for what it
closes over: the config, the steps per epoch (the optimiser's and the schedule's) and, where
the step draws random keys, the run's seed (`step_seed`). One is held per variant of a job
(`loso.train_variants`) and per candidate of `tune`; without one every run builds its own,
with the same results.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from adarl_jax.config import to_json
from adarl_jax.data.augment import make_augment

__all__ = ["Programs", "recipe_key", "step_seed"]


class Programs:
    """Functions built once per key: `get(key, build)` returns the first `build()` for `key`."""

    def __init__(self):
        self._built: dict[Hashable, Any] = {}

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        if key not in self._built:
            self._built[key] = build()
        return self._built[key]

    def __len__(self) -> int:
        return len(self._built)


def recipe_key(config) -> str:
    """The config as canonical JSON, but for train.seed: runs of equal keys build equal
    functions from it. The seed reaches a program only as the step's key seed, which
    `step_seed` adds where the step reads it (the seed's other streams, the initial
    parameters and the batch order, are data), so an ensemble's members share theirs."""
    c = config.copy_and_resolve_references()
    c.train.seed = 0
    return to_json(c)


def step_seed(config, seed: int) -> int | None:
    """The train step's seed as far as the step reads it: None when no augmentation and no
    mixup draws a key (train_step.make_train_step), so that folds differing only in their
    seed share one step."""
    draws = make_augment(config) is not None or float(config.augment.mixup_alpha) > 0
    return int(seed) if draws else None
