"""The paper's model and input on Berlin EmoDB (4 classes), with a schedule sized for it.

  adarl-jax train --config configs/emodb.py --data ../shared/data/emodb --workdir runs/emodb

EmoDB has ~10x fewer steps per epoch than IEMOCAP, so the lr decays by 0.7 every 150 steps
(the paper's rate per IEMOCAP epoch) rather than every epoch. Full resolution: GPU/TPU advised.
The network is `paper.py`'s (kernels (3, 3) and (3, 5), 303,954 parameters).
"""

from adarl_jax.configs import base


def get_config():
    config = base.get_config()
    config.data.corpus = "emodb"
    config.optim.epochs = 40
    config.optim.decay_every_steps = 150
    return config
