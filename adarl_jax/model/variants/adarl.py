"""`adarl`: the paper's model (Fig. 2): domain pathway, domain-aware attention (Eq. 4-5),
emotion pathway."""

import flax.linen as nn

from adarl_jax.model.layers import DomainAwareAttention
from adarl_jax.model.pathways import (ClassCenters, DomainPathway, EmotionPathway,
                                      first_convs_of_pathways, outputs)
from adarl_jax.model.registry import register_variant
from adarl_jax.model.spec import ModelSpec


@register_variant("adarl", uses_domain=True)
class ADARL(nn.Module):
    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool = False):
        # Both pathways read x: with model.shared_first_conv their first convolutions run as one.
        first = first_convs_of_pathways(self, x, ("domain", "emotion"), self.spec)
        domain_f4, domain_logits = DomainPathway(self.spec, name="domain")(
            x, train, first.get("domain"))
        attention = DomainAwareAttention(self.spec.attention_hidden, self.spec.dtype,
                                         name="attention")(domain_f4)
        _, feature, logits = EmotionPathway(self.spec, name="emotion")(
            x, train, attention, first.get("emotion"))
        centers = ClassCenters(self.spec.num_classes, self.spec.hidden, name="centers")()
        return outputs(logits, feature, centers, domain_logits=domain_logits, attention=attention)
