"""A CPU-friendly EmoDB config: half-resolution front end (20 Hz bins, 20 ms hop, 200 x 150),
pools (5,5),(5,5),(1,1),(1,1) so that F_4 stays 8 x 6 x 64 and the model is the paper's.

  adarl-jax reproduce --config configs/emodb_fast.py --data ../shared/data/emodb --workdir runs/emodb_fast
"""

from adarl_jax.config import base_config


def get_config():
    config = base_config()
    config.data.corpus = "emodb"
    config.frontend.hop_s = 0.020
    config.frontend.n_fft = 800
    config.frontend.n_bins = 200
    config.frontend.n_frames = 150
    config.model.block_pools = ((5, 5), (5, 5), (1, 1), (1, 1))
    config.optim.epochs = 20
    config.optim.decay_every_steps = 150
    return config
