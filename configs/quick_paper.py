"""`quick.py`'s input and model with the paper's schedule and protocol: SGD lr 0.2 without
momentum, x0.7 per epoch, plain shuffling, no augmentation, the last epoch reported. The row
beside the recipe, so that what the recipe changes is measured.

  adarl-jax reproduce --config configs/quick_paper.py --data ../shared/data/emodb --workdir runs/quick_paper
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
    config.optim.epochs = 15  # as quick.py; the paper's lr 0.2 x 0.7 per epoch is base_config's
    return config
