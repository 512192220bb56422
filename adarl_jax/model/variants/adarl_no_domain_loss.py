"""`adarl_no_domain_loss`: the paper's ablation control (lambda_1 = 0). The `adarl` network,
parameters and attention unchanged, but no gradient from the gender loss: the domain pathway
learns only through the attention, from the emotion loss. Comparing `adarl` with it isolates
what the gender supervision adds at equal capacity (`backbone` also removes the pathway).
The domain logits are still returned, behind a stop-gradient, so reports keep their columns;
their gender accuracy is that of a head the loss never trained.
"""

import jax

from adarl_jax.model.registry import register_variant
from adarl_jax.model.variants.adarl import ADARL


@register_variant("adarl_no_domain_loss", uses_domain=False)
class ADARLNoDomainLoss(ADARL):
    def __call__(self, x, train: bool = False):
        out = dict(super().__call__(x, train))
        out["domain_logits"] = jax.lax.stop_gradient(out["domain_logits"])
        return out
