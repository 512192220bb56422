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


@register_variant("adarl_fusion", uses_domain=True, uses_functionals=True,
                  defaults={"functionals": "egemaps"})
class ADARLFusion(nn.Module):
    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool = False, functionals=None):
        if functionals is None:
            raise ValueError("adarl_fusion reads each segment's utterance functionals: pass "
                             "functionals (B, d)")
        out = dict(ADARL(self.spec, name="adarl")(x, train))
        out["emotion_logits"] = out["emotion_logits"] + FunctionalsHead(
            self.spec.num_classes, self.spec.bn_momentum, self.spec.dtype,
            name="functionals")(functionals, train).astype(out["emotion_logits"].dtype)
        return out
