"""The quarter-resolution input of `quick_sgd.py` (linear 0-4 kHz bins, z-scored per segment: the paper's front end) and the model with the paper's schedule and protocol: SGD lr 0.2 without
momentum, x0.7 per epoch, plain shuffling, no augmentation, the last epoch reported. The row
beside the recipe, so that what the recipe changes is measured: the network stays the recipe's
(`quick_sgd.py`'s square kernels and joint channel-wise FC init).

  adarl-jax reproduce --config configs/quick_paper.py --data ../shared/data/emodb --workdir runs/quick_paper
"""

from adarl_jax.configs import base


def get_config():
    config = base.get_config()
    config.data.corpus = "emodb"
    config.frontend.update(hop_s=0.050, n_fft=320, n_bins=80, n_frames=60)
    config.model.block_pools = ((5, 5), (2, 2), (1, 1), (1, 1))
    # quick_sgd.py's network; the optim, train and augment sections stay the base's (the paper's)
    base.square_network(config)
    config.optim.epochs = 15  # as quick.py
    return config
