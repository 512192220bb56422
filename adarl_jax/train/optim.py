"""The paper's optimiser: SGD, weight decay 4e-5, lr 0.2 x 0.7 after every epoch (Sec. 3.1).

The decay interval is stated in steps: one epoch by default, or `optim.decay_every_steps`,
so that a schedule meant for IEMOCAP (~150 steps an epoch) can be kept on a smaller corpus.
Small-corpus options, off by default: a linear warm-up over the first
`optim.warmup_steps` steps, a stronger L2 on the domain pathway
(`optim.domain_weight_decay`: every top-level parameter group whose name starts with 'domain'),
an exponential moving average of the weights (`optim.ema_decay`, Polyak averaging) that
validation and test evaluate instead of the last weights, and a domain pathway trained first
(`optim.domain_pretrain_steps`: those steps update only the domain groups, on the domain loss,
under their own decay; the rest's schedule starts after them and the domain groups then move at
`optim.domain_lr_scale` times it, 0 = frozen).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


def pretrain_steps(config) -> int:
    """optim.domain_pretrain_steps: the steps that train the domain pathway alone first."""
    return max(int(config.optim.get("domain_pretrain_steps", 0)), 0)


def num_epochs(config, steps_per_epoch: int) -> int:
    """optim.epochs, or with optim.train_steps > 0 the epochs that make at least that many
    steps (a schedule in steps, whatever the corpus size); the domain pretraining's steps
    come on top of either."""
    spe = max(int(steps_per_epoch), 1)
    steps = int(config.optim.train_steps)
    main = -(-steps // spe) if steps > 0 else int(config.optim.epochs)
    return max(1, main + -(-pretrain_steps(config) // spe))


def emotion_start_epoch(config, steps_per_epoch: int) -> int:
    """The first epoch that trains the emotion pathway: the one after the domain pretraining's
    (optim.domain_pretrain_steps; 0 without it)."""
    return -(-pretrain_steps(config) // max(int(steps_per_epoch), 1))


def patience_steps(config, steps_per_epoch: int) -> float:
    """train.patience_fraction of the emotion schedule's length (optim.train_steps, or the
    epochs' steps after any domain pretraining when that is 0): under train.selection='val' a
    fold stops once its best validation epoch lies that many steps behind (`patience_over`);
    0: it never stops early."""
    fraction = float(config.train.get("patience_fraction", 0.0))
    if fraction <= 0 or config.train.selection != "val":
        return 0.0
    spe = max(int(steps_per_epoch), 1)
    steps = int(config.optim.train_steps)
    main = num_epochs(config, spe) - emotion_start_epoch(config, spe)
    return fraction * (steps if steps > 0 else main * spe)


def patience_over(best_epoch: int, epoch: int, steps_per_epoch: int, limit: float,
                  start_epoch: int = 0) -> bool:
    """Whether training stops after `epoch`: `limit` > 0 steps (`patience_steps`) have passed
    since the best validation epoch so far (-1: none yet, never stops), counted from no earlier
    than the last epoch before `start_epoch` (`emotion_start_epoch`: a domain pretraining's
    epochs, whose emotion scores are chance, start no count)."""
    return (limit > 0 and best_epoch >= 0
            and (epoch - max(best_epoch, start_epoch - 1)) * steps_per_epoch >= limit)


def _decay(o, total: int, steps_per_epoch: int) -> optax.Schedule:
    """optim.schedule's decay from optim.lr over `total` steps (cosine) or every epoch /
    decay_every_steps (step), with the warm-up."""
    if o.schedule == "cosine":
        decay = optax.cosine_decay_schedule(o.lr, decay_steps=max(total, 1))
    elif o.schedule == "step":
        every = o.decay_every_steps or steps_per_epoch
        decay = optax.exponential_decay(o.lr, transition_steps=max(int(every), 1),
                                        decay_rate=o.decay, staircase=True)
    else:
        raise ValueError(f"optim.schedule={o.schedule!r}: expected 'step' or 'cosine'")
    warmup = int(o.warmup_steps)
    if warmup <= 0:
        return decay
    return lambda step: decay(step) * jnp.minimum(1.0, (step + 1) / warmup)


def _main_decay(config, steps_per_epoch: int) -> optax.Schedule:
    """The configured decay over the run's steps after the domain pretraining (all of them
    without it), counted from the first of those steps."""
    total = num_epochs(config, steps_per_epoch) * max(int(steps_per_epoch), 1)
    return _decay(config.optim, total - pretrain_steps(config), steps_per_epoch)


def learning_rate_schedule(config, steps_per_epoch: int) -> optax.Schedule:
    """The lr of every step (of every parameter but a pretrained domain pathway's): the
    configured decay over the run's steps, starting after the domain pretraining (0 during it)."""
    first = pretrain_steps(config)
    decay = _main_decay(config, steps_per_epoch)
    if first == 0:
        return decay
    return lambda step: jnp.where(step < first, 0.0, decay(jnp.maximum(step - first, 0)))


def domain_learning_rate_schedule(config, steps_per_epoch: int) -> optax.Schedule:
    """With optim.domain_pretrain_steps N > 0, the domain pathway's lr: the configured decay
    over the first N steps, then optim.domain_lr_scale times the rest's schedule."""
    first = pretrain_steps(config)
    pretrain = _decay(config.optim, first, steps_per_epoch)
    after = learning_rate_schedule(config, steps_per_epoch)
    scale = float(config.optim.domain_lr_scale)
    return lambda step: jnp.where(step < first, pretrain(step), scale * after(step))


def domain_loss_only(config):
    """(step) -> True while the domain pathway is pretrained alone (the emotion and centre
    losses then weigh 0); None without domain pretraining."""
    first = pretrain_steps(config)
    return (lambda step: step < first) if first else None


def _domain_mask(params):
    """True on every leaf of a top-level group named domain* (the domain pathway and heads)."""
    return {k: jax.tree.map(lambda _: k.startswith("domain"), v) for k, v in params.items()}


class ParamAverageState(NamedTuple):
    count: jax.Array  # updates averaged so far
    average: Any  # the debiased moving average of the parameters after each update


def param_average(decay: float) -> optax.GradientTransformation:
    """Keeps an exponential moving average of the parameters; the updates pass unchanged.

    Put it last in a chain (it averages params + the final updates). Debiased as Adam's
    moments are: after t updates the average is sum_i (1-d) d^(t-i) p_i / (1 - d^t), so the
    zero it starts from never shows (after one update it is p_1).
    """
    decay = float(decay)

    def init(params):
        return ParamAverageState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params):
        count = state.count + 1
        rate = (1.0 - decay) / (1.0 - decay ** count.astype(jnp.float32))
        new = optax.apply_updates(params, updates)
        average = jax.tree.map(lambda a, p: (a + rate * (p - a)).astype(a.dtype), state.average, new)
        return updates, ParamAverageState(count, average)

    return optax.GradientTransformation(init, update)


def averaged_params(params, opt_state):
    """The parameter average that `param_average` keeps in `opt_state`, else `params` (also
    before the first update)."""
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, ParamAverageState))
             if isinstance(s, ParamAverageState)]
    if not found:
        return params
    s = found[0]
    return jax.tree.map(lambda a, p: jnp.where(s.count > 0, a, p), s.average, params)


def _domain_labels(params):
    """'domain' on every leaf of a domain* group, 'rest' elsewhere; a model without a domain
    pathway cannot have it pretrained."""
    if not any(k.startswith("domain") for k in params):
        raise ValueError("optim.domain_pretrain_steps > 0 needs a variant with a domain pathway "
                         f"(a parameter group named domain*); this model's groups: {sorted(params)}")
    return jax.tree.map(lambda is_domain: "domain" if is_domain else "rest", _domain_mask(params))


def _base_optimizer(o, schedule) -> list[optax.GradientTransformation]:
    """The configured optimiser under `schedule`, as the parts of a chain."""
    # sgd: coupled L2 decay added to the gradient, as torch.optim.SGD(weight_decay=...) does;
    # adamw: Adam with decoupled weight decay (optax.adamw), scaled by the schedule.
    decays = [optax.add_decayed_weights(o.weight_decay)] if o.optimizer == "sgd" else []
    domain_wd = float(o.domain_weight_decay)
    if domain_wd >= 0 and domain_wd != o.weight_decay:
        decays.append(optax.add_decayed_weights(domain_wd - o.weight_decay, mask=_domain_mask))
    if o.optimizer == "sgd":
        base = optax.sgd(schedule, momentum=o.momentum or None)
    elif o.optimizer == "adamw":
        base = optax.adamw(schedule, weight_decay=o.weight_decay)
    else:
        raise ValueError(f"optim.optimizer={o.optimizer!r}: expected 'sgd' or 'adamw'")
    return [*decays, base]


def make_optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
    o = config.optim
    first = pretrain_steps(config)
    if not first:
        parts = _base_optimizer(o, learning_rate_schedule(config, steps_per_epoch))
    else:
        # the same optimiser per group under its own schedule; the rest's is not called during
        # the pretraining (zero updates, its state untouched: Adam's moments and step count,
        # momentum, start with the main phase, whose decay counts from there)
        rest = optax.transforms.conditionally_mask(
            optax.chain(*_base_optimizer(o, _main_decay(config, steps_per_epoch))),
            lambda step: step >= first)
        domain = _base_optimizer(o, domain_learning_rate_schedule(config, steps_per_epoch))
        parts = [optax.multi_transform({"rest": rest, "domain": optax.chain(*domain)},
                                       _domain_labels)]
    if float(o.ema_decay) > 0:
        parts.append(param_average(o.ema_decay))
    return optax.chain(*parts)
