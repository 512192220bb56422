"""The paper's optimiser: SGD, weight decay 4e-5, lr 0.2 x 0.7 after every epoch (Sec. 3.1).

The decay interval is stated in steps: one epoch by default, or `optim.decay_every_steps`,
so that a schedule meant for IEMOCAP (~150 steps an epoch) can be kept on a smaller corpus.
Small-corpus options, off by default: a linear warm-up over the first
`optim.warmup_steps` steps, a stronger L2 on the domain pathway
(`optim.domain_weight_decay`: every top-level parameter group whose name starts with 'domain'),
and an exponential moving average of the weights (`optim.ema_decay`, Polyak averaging) that
validation and test evaluate instead of the last weights.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


def num_epochs(config, steps_per_epoch: int) -> int:
    """optim.epochs, or with optim.train_steps > 0 the epochs that make at least that many
    steps (a schedule in steps, whatever the corpus size)."""
    steps = int(config.optim.train_steps)
    if steps > 0:
        return max(1, -(-steps // max(int(steps_per_epoch), 1)))
    return int(config.optim.epochs)


def learning_rate_schedule(config, steps_per_epoch: int) -> optax.Schedule:
    o = config.optim
    if o.schedule == "cosine":
        total = num_epochs(config, steps_per_epoch) * max(int(steps_per_epoch), 1)
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


def make_optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
    o = config.optim
    schedule = learning_rate_schedule(config, steps_per_epoch)
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
    parts = [*decays, base]
    if float(o.ema_decay) > 0:
        parts.append(param_average(o.ema_decay))
    return optax.chain(*parts)
