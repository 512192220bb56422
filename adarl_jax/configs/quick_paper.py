"""The quarter-resolution input of `quick_sgd.py` (linear 0-4 kHz bins, z-scored per segment: the paper's front end) and the model with the paper's schedule and protocol: SGD lr 0.2 without
momentum, x0.7 per epoch, plain shuffling, no augmentation, the last epoch reported. The row
beside the recipe, so that what the recipe changes is measured: the network stays the recipe's
(`quick_sgd.py`'s square kernels and joint channel-wise FC init).

  adarl-jax reproduce --config configs/quick_paper.py --data ../shared/data/emodb --workdir runs/quick_paper
"""

from adarl_jax.config import base_config, load_config


def get_config():
    config = load_config("quick_sgd")
    paper = base_config()
    for section in ("optim", "train", "augment"):  # the recipe's sections, back to the paper's
        config[section] = paper[section]
    config.optim.epochs = 15  # as quick.py
    return config
