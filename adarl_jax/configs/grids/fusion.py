"""The fusion lever for `adarl-jax tune`: the `quick` recipe's adarl against the same network
with openSMILE functionals beside its deep feature (`adarl_fusion`), eGeMAPS (88) or ComParE
(6,373) functionals, each standardised as the spectrogram is; and `adarl_fusion_late`, where
the CNN head and the functionals head each learn the labels alone and their probabilities are
averaged.

  adarl-jax tune --grid fusion --data ../shared/data/emodb --workdir runs/tune-fusion-emodb

Everything else is `configs/quick.py` (speaker-standardised 80 x 60 x 3 mel input, AdamW over
the recipe's steps, the epoch chosen on validation speakers). Extraction needs openSMILE (the
`[baselines]` extra); the functionals are cached beside the spectrograms and shared with the
baselines.
"""

FUSION = ["model.variant=adarl_fusion"]


def get_grid():
    return {
        "config": "quick",
        "candidates": {
            "adarl": [],
            "fusion_egemaps": FUSION + ["model.functionals=egemaps"],
            "fusion_compare": FUSION + ["model.functionals=compare"],
            # added after the validation UAs of fusion_egemaps on 7 EmoDB folds were seen (no
            # test figure): each head trained by its own loss, their probabilities averaged
            "fusion_late": ["model.variant=adarl_fusion_late", "model.functionals=egemaps"],
        },
    }
