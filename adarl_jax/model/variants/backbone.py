"""`backbone`: the emotion pathway alone (Table 3, first row; gamma_1 = 0)."""

import flax.linen as nn

from adarl_jax.model.pathways import ClassCenters, EmotionPathway, outputs
from adarl_jax.model.registry import register_variant
from adarl_jax.model.spec import ModelSpec


@register_variant("backbone", uses_domain=False)
class Backbone(nn.Module):
    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool = False):
        _, feature, logits = EmotionPathway(self.spec, name="emotion")(x, train)
        centers = ClassCenters(self.spec.num_classes, self.spec.hidden, name="centers")()
        return outputs(logits, feature, centers)
