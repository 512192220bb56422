"""The CPU-friendly half-resolution config: 20 Hz bins, 20 ms hop, 200 x 150 input, pools
(5,5),(5,5),(1,1),(1,1) so that F_4 stays 8 x 6 x 64 and the model is the paper's in the
reading `quick_sgd.py` pins (square kernels: 345,874 parameters); the training recipe is the earlier `quick_sgd.py` (lr 0.05 x0.7/150 steps, 15 epochs, epoch
chosen on validation speakers, batches balanced over class x gender), unchanged.

Against `quick.py` (80 x 60) it shows what the input's resolution is worth: 2.5x finer
frequency bins (F0 and its first harmonics, what tells gender, fall in 2-3 bins at 50 Hz) at
about 8x the cost of a step. Nothing in it names a corpus's speakers or files.

  adarl-jax reproduce --config configs/emodb_fast.py --data ../shared/data/emodb --workdir runs/emodb_fast
"""

from adarl_jax.configs import base


def get_config():
    config = base.get_config()
    config.data.corpus = "emodb"
    config.frontend.update(hop_s=0.020, n_fft=800, n_bins=200, n_frames=150)
    config.model.block_pools = ((5, 5), (5, 5), (1, 1), (1, 1))
    # quick_sgd.py's network and training recipe:
    base.square_network(config)
    base.sgd_training(config)
    return config
