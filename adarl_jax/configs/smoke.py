"""Tiny everything, for tests and a first check of an install: a 40 x 30 input, 2 epochs.

  adarl-jax train --config configs/smoke.py --data ../shared/data/emodb --workdir /tmp/smoke
"""

from adarl_jax.config import base_config


def get_config():
    config = base_config()
    config.data.corpus = "emodb"
    config.data.max_utterances = 40
    config.frontend.hop_s = 0.100
    config.frontend.n_fft = 160
    config.frontend.n_bins = 40
    config.frontend.n_frames = 30
    config.model.block_pools = ((5, 5), (1, 1), (1, 1), (1, 1))
    config.model.block_features = ((4, 4), (4, 4), (4, 4), (8, 8))
    config.model.hidden = 16
    config.optim.batch_size = 8
    config.optim.epochs = 2
    config.train.eval_batch_size = 8
    return config
