"""The paper's optimiser: SGD, weight decay 4e-5, lr 0.2 x 0.7 after every epoch (Sec. 3.1).

The decay interval is stated in steps: one epoch by default, or `optim.decay_every_steps`,
so that a schedule meant for IEMOCAP (~150 steps an epoch) can be kept on a smaller corpus.
Two small-corpus options (issue 7), off by default: a linear warm-up over the first
`optim.warmup_steps` steps, and a stronger L2 on the domain pathway
(`optim.domain_weight_decay`: every top-level parameter group whose name starts with 'domain').
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def learning_rate_schedule(config, steps_per_epoch: int) -> optax.Schedule:
    o = config.optim
    every = o.decay_every_steps or steps_per_epoch
    decay = optax.exponential_decay(o.lr, transition_steps=max(int(every), 1),
                                    decay_rate=o.decay, staircase=True)
    warmup = int(o.warmup_steps)
    if warmup <= 0:
        return decay
    return lambda step: decay(step) * jnp.minimum(1.0, (step + 1) / warmup)


def _domain_mask(params):
    """True on every leaf of a top-level group named domain* (the domain pathway and heads)."""
    return {k: jax.tree.map(lambda _: k.startswith("domain"), v) for k, v in params.items()}


def make_optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
    o = config.optim
    # Coupled L2 decay added to the gradient, as torch.optim.SGD(weight_decay=...) does.
    decays = [optax.add_decayed_weights(o.weight_decay)]
    domain_wd = float(o.domain_weight_decay)
    if domain_wd >= 0 and domain_wd != o.weight_decay:
        decays.append(optax.add_decayed_weights(domain_wd - o.weight_decay, mask=_domain_mask))
    return optax.chain(
        *decays,
        optax.sgd(learning_rate_schedule(config, steps_per_epoch), momentum=o.momentum or None),
    )
