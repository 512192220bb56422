"""Tiny everything, for tests and a first check of an install: a 20 x 15 input, 2 epochs.

  adarl-jax train --config configs/smoke.py --data ../shared/data/emodb --workdir /tmp/smoke
"""

from adarl_jax.configs import base


def get_config():
    config = base.get_config()
    config.data.corpus = "emodb"
    config.data.max_utterances = 40
    config.frontend.update(hop_s=0.2, n_fft=80, n_bins=20, n_frames=15)
    config.model.block_pools = ((5, 5), (1, 1), (1, 1), (1, 1))
    config.model.block_features = ((2, 2), (2, 2), (2, 2), (4, 4))
    config.model.hidden = 8
    config.optim.batch_size = 8
    config.optim.epochs = 2
    config.train.eval_batch_size = 8
    return config
