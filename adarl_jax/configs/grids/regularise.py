"""Capacity and regularisation levers for small data, for `adarl-jax tune`: the `quick`
recipe's adarl against the same recipe with one lever added.

  adarl-jax tune --grid regularise --data ../shared/data/emodb --workdir runs/tune-regularise-emodb

- smooth: label smoothing 0.1 on the emotion targets;
- mixup: mixup of inputs and targets, lambda ~ Beta(0.2, 0.2);
- masks: SpecAugment, 2 frequency and 2 time masks of up to 10% each;
- narrow: half the channels in every block (8, 8, 8, 16 per kernel), a quarter of the
  convolutions' parameters.

Everything else is `configs/quick.py`. The earlier recipe (`quick_sgd`, which underfitted in its
135 steps) lost validation UA with mixup and the masks; this recipe fits its training speakers
in its AdamW steps (300 when this grid was screened, 600 now), where regularisation may pay.
"""


def get_grid():
    return {
        "config": "quick",
        "candidates": {
            "adarl": [],
            "smooth": ["loss.label_smoothing=0.1"],
            "mixup": ["augment.mixup_alpha=0.2"],
            "masks": ["augment.freq_masks=2", "augment.time_masks=2"],
            "narrow": ["model.block_features=((8, 8), (8, 8), (8, 8), (16, 16))"],
        },
    }
