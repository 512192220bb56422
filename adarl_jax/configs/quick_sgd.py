"""The earlier laptop recipe (`configs/quick.py` until the generalisation work), kept so that
its tables in RESULTS.md can be rerun: the quarter-resolution input (50 Hz linear bins over
0-4 kHz, 50 ms hop, 80 x 60, z-scored per segment), SGD lr 0.05 without momentum for 15
epochs (x0.7 every 150 steps), the epoch chosen on validation speakers, batches balanced over
emotion x gender.

  adarl-jax reproduce --config configs/quick_sgd.py --data ../shared/data/emodb --workdir runs/quick_sgd

It underfits (training accuracy 0.78 on EmoDB, 0.48 on RAVDESS after its ~135 steps).
"""

from adarl_jax.configs import base


def get_config():
    config = base.get_config()
    config.data.corpus = "emodb"
    config.frontend.update(hop_s=0.050, n_fft=320, n_bins=80, n_frames=60)
    config.model.block_pools = ((5, 5), (2, 2), (1, 1), (1, 1))
    base.square_network(config)  # the measured network (quick.py's tables), not the paper reading
    base.sgd_training(config)
    return config
