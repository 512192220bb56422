"""`adarl_fusion_late`: the paper's model and a linear model of openSMILE functionals, each
learning the labels on its own, their predictions averaged.

The `adarl` network unchanged and, beside it, `FunctionalsHead` (BatchNorm then FC) on the
utterance's functionals (`model.functionals`, as `adarl_fusion` reads them). Where
`adarl_fusion` adds the two heads' logits and trains the sum (so the heads compete for the
same error), here each head is trained by its own cross-entropy (`emotion_heads`) and the
prediction is the mean of their probabilities (`emotion_logits` = log of that mean): an
ensemble of a CNN and a logistic regression trained in one program.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from adarl_jax.model.registry import register_variant
from adarl_jax.model.spec import ModelSpec
from adarl_jax.model.variants.adarl_fusion import adarl_and_functionals


@register_variant("adarl_fusion_late", uses_domain=True, uses_functionals=True,
                  defaults={"functionals": "egemaps"})
class ADARLFusionLate(nn.Module):
    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool = False, functionals=None):
        out, linear = adarl_and_functionals(self.spec, x, train, functionals, "adarl_fusion_late")
        cnn = out["emotion_logits"]
        mixture = jnp.log(0.5 * jax.nn.softmax(cnn) + 0.5 * jax.nn.softmax(linear) + 1e-12)
        out["emotion_logits"] = mixture
        out["emotion_heads"] = (cnn, linear)
        return out
