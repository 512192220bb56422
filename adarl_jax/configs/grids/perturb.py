"""Perturbation levers for small data, for `adarl-jax tune`: the `quick` recipe's adarl against
the same recipe with each recording's voice perturbed during training.

  adarl-jax tune --grid perturb --data ../shared/data/emodb --workdir runs/tune-perturb-emodb

- warp: the spectrogram's frequency axis stretched by a random factor in [0.9, 1.1] per
  training segment and step (VTLP-like, `augment.freq_warp`);
- speed: every training recording also played at 0.9x and 1.1x (resampled waveforms, so pitch,
  formants and tempo move together), each copy standardised by its own (speaker, speed)
  statistics: three times the training data (`augment.speeds`, Ko et al., 2015).

Everything else is `configs/quick.py`; the factors are the literature's, fixed a priori. The
recipe trains a fixed number of steps whatever the training set's size (300 when this grid was
screened), so 'speed' sees each segment a third as often (about 11 epochs of EmoDB instead of
34 at 300 steps) and its epoch is chosen among fewer
validation points: the lever is "more varied data for the same compute", as it would run.
"""


def get_grid():
    return {
        "config": "quick",
        "candidates": {
            "adarl": [],
            "warp": ["augment.freq_warp=0.1"],
            "speed": ["augment.speeds=(0.9, 1.1)"],
        },
    }
