"""`domain_invariant`: adversarial multitask training (Fig. 1a, Table 3 second row).

The backbone, plus a gender classifier that reads its deep feature through a gradient-reversal
layer, so the emotion pathway is pushed towards gender-invariant features.
"""

import jax.numpy as jnp

from adarl_jax.model.layers import FeatureHead, gradient_reversal
from adarl_jax.model.registry import register_variant
from adarl_jax.model.variants.backbone import Backbone


@register_variant("domain_invariant", uses_domain=True)
class DomainInvariant(Backbone):
    def setup(self):
        s = self.spec
        self.domain_head = FeatureHead(s.hidden, s.num_domains, s.bn_momentum, s.dtype)

    def __call__(self, x, train: bool = False):
        out = dict(super().__call__(x, train))
        reversed_feature = gradient_reversal(out["deep_feature"], self.spec.grl_scale)
        _, domain_logits = self.domain_head(reversed_feature, train)
        out["domain_logits"] = domain_logits.astype(jnp.float32)
        return out
