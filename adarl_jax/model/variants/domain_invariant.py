"""`domain_invariant`: adversarial multitask training (Fig. 1a, Table 3 second row).

A gender classifier reads the emotion deep feature through a gradient-reversal layer, so the
emotion pathway is pushed towards gender-invariant features.
"""

import flax.linen as nn

from adarl_jax.model.layers import FeatureHead, gradient_reversal
from adarl_jax.model.pathways import ClassCenters, EmotionPathway, outputs
from adarl_jax.model.registry import register_variant
from adarl_jax.model.spec import ModelSpec


@register_variant("domain_invariant", uses_domain=True)
class DomainInvariant(nn.Module):
    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool = False):
        _, feature, logits = EmotionPathway(self.spec, name="emotion")(x, train)
        reversed_feature = gradient_reversal(feature, self.spec.grl_scale)
        _, domain_logits = FeatureHead(self.spec.hidden, self.spec.num_domains,
                                       self.spec.bn_momentum, self.spec.dtype,
                                       name="domain_head")(reversed_feature, train)
        centers = ClassCenters(self.spec.num_classes, self.spec.hidden, name="centers")()
        return outputs(logits, feature, centers, domain_logits=domain_logits)
