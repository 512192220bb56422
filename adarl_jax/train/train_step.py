"""The train state and the pure step functions: train_step(state, batch) -> (state, metrics).

A batch is a dict of arrays with a leading batch axis:
  x        (B, freq, time, 3) float32 spectrogram segments
  emotion  (B,) int32 class index, -1 = no emotion label
  domain   (B,) int32 gender index, -1 = no domain label
  weight   (B,) float32, 0 for padding
"""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

from adarl_jax.train import losses
from adarl_jax.data.augment import mixup
from adarl_jax.config import input_shape
from adarl_jax.data.functionals import functionals_dim
from adarl_jax.model import build_model, init_variables
from adarl_jax.train.optim import averaged_params, make_optimizer


class TrainState(flax.struct.PyTreeNode):
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    class_weights: jax.Array  # (num_classes,) emotion-loss weights; ones = the paper

    @property
    def variables(self):
        return {"params": self.params, "batch_stats": self.batch_stats}

    @property
    def eval_variables(self):
        """What validation, test and inference use: the weights' moving average when the
        optimiser keeps one (optim.ema_decay > 0), else the weights themselves."""
        return {"params": averaged_params(self.params, self.opt_state), "batch_stats": self.batch_stats}


def create_train_state(variables, tx: optax.GradientTransformation, num_classes: int,
                       class_weights=None) -> TrainState:
    params = variables["params"]
    if class_weights is None:
        class_weights = jnp.ones((num_classes,), jnp.float32)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                      class_weights=jnp.asarray(class_weights, jnp.float32))


def create_train_state_from_config(config, key, steps_per_epoch: int, class_weights=None):
    """(model, initial TrainState, optimiser) of `config`: the model built, its variables
    initialised from `key`, the optimiser for `steps_per_epoch` and the state holding them.
    The one set-up shared by training, checkpoint shapes and benchmarks."""
    model = build_model(config)
    variables = init_variables(model, input_shape(config), key, functionals_dim(config))
    tx = make_optimizer(config, steps_per_epoch)
    state = create_train_state(variables, tx, len(config.data.classes), class_weights)
    return model, state, tx


def step_draws_keys(augment: Callable | None, mixup_alpha: float) -> bool:
    """Whether `make_train_step`'s step reads its seed: only augmentation and mixup draw keys
    (adarl_jax.train.programs keys a shared step by the seed exactly then)."""
    return augment is not None or float(mixup_alpha) > 0


def make_train_step(model, tx: optax.GradientTransformation, loss_weights,
                    lr_schedule: Callable | None = None, augment: Callable | None = None,
                    seed: int = 0, mixup_alpha: float = 0.0, label_smoothing: float = 0.0,
                    domain_loss_only: Callable | None = None):
    """Builds the pure train step for `model`; jit and shard it with `sharding.jit_train_step`.

    `augment(key, x) -> x` (adarl_jax.data.augment) and mixup (`mixup_alpha` > 0) draw their keys
    from (seed, step), so a resumed run sees the same augmentations as an uninterrupted one.
    `domain_loss_only(step)` (optim.domain_loss_only): True on the steps where the emotion and
    centre losses weigh 0 (the domain pathway pretrained alone).
    """
    fixed_weights = tuple(float(w) for w in loss_weights)

    def train_step(state: TrainState, batch: dict):
        loss_weights = fixed_weights
        if domain_loss_only is not None:
            on = jnp.where(domain_loss_only(state.step), 0.0, 1.0)
            loss_weights = (fixed_weights[0], on * fixed_weights[1], on * fixed_weights[2])
        x = batch["x"]
        # a variant that reads functionals gets its utterances' (batch['functionals'])
        inputs = {"functionals": batch["functionals"]} if "functionals" in batch else {}
        if inputs and mixup_alpha > 0:
            raise ValueError("augment.mixup_alpha > 0 does not mix functionals: set it to 0 for "
                             "a variant that reads them")
        if step_draws_keys(augment, mixup_alpha):  # else the seed is read nowhere
            key = jax.random.fold_in(jax.random.key(seed, impl="rbg"), state.step)
        if augment is not None:
            x = augment(key, x)
        if mixup_alpha > 0:
            x, own, partner, lam = mixup(jax.random.fold_in(key, 1), {**batch, "x": x}, mixup_alpha)

        def loss_fn(params):
            out, updates = model.apply({"params": params, "batch_stats": state.batch_stats},
                                       x, train=True, mutable=["batch_stats"], **inputs)
            if mixup_alpha > 0:
                mixed = [losses.total_loss(out, labels, loss_weights, state.class_weights,
                                             label_smoothing)
                         for labels in (own, partner)]
                loss, metrics = jax.tree.map(lambda a, b: lam * a + (1 - lam) * b, *mixed)
            else:
                loss, metrics = losses.total_loss(out, batch, loss_weights, state.class_weights,
                                                     label_smoothing)
            return loss, (metrics, updates["batch_stats"])

        grads, (metrics, batch_stats) = jax.grad(loss_fn, has_aux=True)(state.params)
        # running statistics keep their dtype whatever the compute dtype (bfloat16, float64),
        # so the state's types are the same after a step (a lax.scan carry must be)
        batch_stats = jax.tree.map(lambda new, old: new.astype(old.dtype), batch_stats,
                                   state.batch_stats)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if lr_schedule is not None:
            metrics["lr"] = jnp.asarray(lr_schedule(state.step), jnp.float32)
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                                  opt_state=opt_state)
        return new_state, metrics

    return train_step


def make_train_epoch(train_step, sharding_constraint=None):
    """One epoch as one compiled call: `lax.scan` of `train_step` over device-resident data.

    epoch(state, data, order) -> (state, metrics averaged over the epoch), where `data` holds
    the whole training set ({x, emotion, domain, weight}, leading axis = segments) and
    `order` is (steps, batch) indices (trainer.epoch_order: the same shuffle as the
    step-by-step loop, so both give the same result). Python dispatch disappears: one call an
    epoch instead of one a step.
    """

    def epoch(state, data, order):
        def body(state, idx):
            batch = jax.tree.map(lambda a: a[idx], data)
            if sharding_constraint is not None:
                batch = jax.lax.with_sharding_constraint(batch, sharding_constraint)
            return train_step(state, batch)

        state, metrics = jax.lax.scan(body, state, order)
        return state, jax.tree.map(lambda m: m.mean(0), metrics)

    return epoch


def make_multi_fold_step(train_step):
    """All LOSO folds in one program: `vmap` of the step over stacked states and batches.

    Each fold has its own parameters, optimizer state and BatchNorm statistics (leading axis
    = fold); its batch is drawn from its own training speakers. One compiled program trains
    every fold at once, which fills an accelerator that a single batch of 32 leaves idle.
    """
    return jax.vmap(train_step, in_axes=(0, 0), out_axes=(0, 0))


def stack_states(states):
    """[state_fold0, state_fold1, ...] -> one state with a leading fold axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)
