"""The functions a job's runs share, built once, so that a variant's later folds reuse them.

jax caches a jitted function's tracing and compilation by the identity of the Python function
it wraps. A fold that builds its own train step and prediction function (closures over the
model, the optimiser, the schedule) therefore traces them again and compiles or loads them
from the persistent cache, even where they are the same programs as the fold before's.
`Programs` hands every run of a job the one function built for what it closes over: the
config (but its seed), the mesh, the steps per epoch (the optimiser's and the schedule's
constants: folds with other counts build their own) and, where the step draws random keys,
the run's seed (`step_seed`). The step loop's train step and the evaluator are then traced
and compiled once (the model's initialisation is one program per model and input shape,
`model.init_variables`), and so is the scanned epoch (on accelerators) for the folds whose
training sets round to one held size (`epochs.held_rows`: at most 1/8 of padding; a set's
size is in that program). One `Programs` is
held per variant of a job (`loso.train_variants`), per candidate of `tune` and per final
model (its ensemble members); without one every run builds its own, with the same results.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from adarl_jax.config import to_json
from adarl_jax.data.augment import make_augment
from adarl_jax.train.train_step import step_draws_keys

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
    """The train step's seed as far as the step reads it (train_step.step_draws_keys): None
    when no augmentation and no mixup draws a key, so that folds differing only in their seed
    share one step."""
    draws = step_draws_keys(make_augment(config), config.augment.mixup_alpha)
    return int(seed) if draws else None
