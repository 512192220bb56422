"""The laptop default of `adarl-jax reproduce`: a quarter-resolution front end (50 Hz bins,
50 ms hop, 80 x 60 input), pools (5,5),(2,2),(1,1),(1,1) so that F_4 is still 8 x 6 x 64 and
the model has the paper's 345,874 parameters; a short schedule.

  adarl-jax reproduce --data ../shared/data/emodb --workdir runs/quick
"""

from adarl_jax.config import base_config


def get_config():
    config = base_config()
    config.data.corpus = "emodb"
    config.frontend.hop_s = 0.050
    config.frontend.n_fft = 320
    config.frontend.n_bins = 80
    config.frontend.n_frames = 60
    config.model.block_pools = ((5, 5), (2, 2), (1, 1), (1, 1))
    config.optim.epochs = 10
    config.optim.decay_every_steps = 150
    return config
