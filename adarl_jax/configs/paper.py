"""The paper's protocol (Sec. 3.1): full-resolution input, SGD 0.2 x 0.7 per epoch, 50 epochs.

  adarl-jax train --config configs/paper.py --corpus iemocap --data /path/to/IEMOCAP_full_release --workdir runs/paper

The network is base_config's reading of Table 1: kernels (3, 3) and (3, 5) (frequency, time),
the channel-wise FC initialised as 64 FC(8, 1) layers; 303,954 parameters (adarl).
At 400 x 300 a batch-32 step takes ~9 s on a 2-core CPU: this is a GPU/TPU config.
"""

from adarl_jax.configs import base


def get_config():
    config = base.get_config()
    config.data.corpus = "iemocap"
    return config
