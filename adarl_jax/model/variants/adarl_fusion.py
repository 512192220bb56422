"""`adarl_fusion`: the paper's model with openSMILE functionals beside its deep feature.

The `adarl` network unchanged (domain pathway, domain-aware frequency attention, emotion
pathway, centre loss on the CNN's deep feature); its emotion logits gain a linear term of
the utterance's functionals (`FunctionalsHead`: BatchNorm then FC), which is one linear
classifier over [deep feature, functionals]. `model.functionals` names the set ('egemaps':
88 eGeMAPSv02 functionals, 'compare': 6,373 ComParE_2016 ones); the pipeline extracts them
once per utterance (openSMILE, the `[baselines]` extra), standardises them as the
spectrogram is (per speaker under frontend.normalize='speaker'; otherwise the head's
BatchNorm uses the training statistics) and gives every segment its utterance's row.
"""

import flax.linen as nn

from adarl_jax.model.layers import FunctionalsHead
from adarl_jax.model.registry import register_variant
from adarl_jax.model.spec import ModelSpec
from adarl_jax.model.variants.adarl import ADARL


def adarl_and_functionals(spec: ModelSpec, x, train: bool, functionals, variant: str):
    """(adarl's outputs, the functionals head's logits): the two halves every fusion of adarl
    with functionals combines. Call inside a compact module (submodules 'adarl', 'functionals')."""
    if functionals is None:
        raise ValueError(f"{variant} reads each segment's utterance functionals: pass "
                         "functionals (B, d)")
    out = dict(ADARL(spec, name="adarl")(x, train))
    linear = FunctionalsHead(spec.num_classes, spec.bn_momentum, spec.dtype,
                             name="functionals")(functionals, train)
    return out, linear.astype(out["emotion_logits"].dtype)


@register_variant("adarl_fusion", uses_domain=True, uses_functionals=True,
                  defaults={"functionals": "egemaps"})
class ADARLFusion(nn.Module):
    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool = False, functionals=None):
        out, linear = adarl_and_functionals(self.spec, x, train, functionals, "adarl_fusion")
        out["emotion_logits"] = out["emotion_logits"] + linear
        return out
