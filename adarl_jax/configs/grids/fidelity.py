"""Readings of the paper against the measured laptop recipe, as candidates for `adarl-jax tune`.

  adarl-jax tune --grid fidelity --data ../shared/data/emodb --workdir runs/tune-fidelity-emodb

Each candidate changes one reading of `configs/quick.py` (square 3x3 and 5x5 kernels, the
channel-wise FC initialised as one (8, 64) layer, 20/30/40 ms windows):
- quick: the recipe as it is;
- per_channel_init: the channel-wise FC initialised as Table 1's 64 separate FC(8, 1) layers
  (Xavier with fan-out 1);
- rect_kernels: Table 1's kernels read as 3 in frequency and 3 or 5 in time, (3, 3) and (3, 5);
- two_windows_mean: the 20 and 40 ms windows of Sec. 2.4, the third channel their mean.
"""


def get_grid():
    return {
        "config": "quick",
        "candidates": {
            "quick": [],
            "per_channel_init": ["model.channelwise_init=per_channel"],
            "rect_kernels": ["model.kernel_sizes=((3, 3), (3, 5))"],
            "two_windows_mean": ["frontend.windows_s=(0.020, 0.040)",
                                 "frontend.third_channel=mean"],
        },
    }
