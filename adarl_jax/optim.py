"""The paper's optimiser: SGD, weight decay 4e-5, lr 0.2 x 0.7 after every epoch (Sec. 3.1).

The decay interval is stated in steps: one epoch by default, or `optim.decay_every_steps`,
so that a schedule meant for IEMOCAP (~150 steps an epoch) can be kept on a smaller corpus.
"""

from __future__ import annotations

import optax


def learning_rate_schedule(config, steps_per_epoch: int) -> optax.Schedule:
    o = config.optim
    every = o.decay_every_steps or steps_per_epoch
    return optax.exponential_decay(o.lr, transition_steps=max(int(every), 1),
                                   decay_rate=o.decay, staircase=True)


def make_optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
    o = config.optim
    # Coupled L2 decay added to the gradient, as torch.optim.SGD(weight_decay=...) does.
    return optax.chain(
        optax.add_decayed_weights(o.weight_decay),
        optax.sgd(learning_rate_schedule(config, steps_per_epoch), momentum=o.momentum or None),
    )
