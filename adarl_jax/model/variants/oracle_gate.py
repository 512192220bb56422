"""`oracle_gate`: the frequency gate chosen by the true domain label, an upper bound for ADARL.

The emotion pathway of `adarl` with its Eq. 5 gate, but the gate is not inferred from the input:
it is a learnt vector per domain value (one weight per frequency row of F_4,
sigmoid(gate_scale * p) with p initialised at 0, so 0.5 as an untrained attention), picked by the
utterance's true domain label at training and at test time (`model.functionals='domain'`: the pipeline passes
each segment the one-hot of its utterance's domain; an unknown domain gets 0.5 everywhere).
No domain pathway, no gender loss. `gate_scale` (default 10) lets the gate reach any value
within the recipe's budget: Adam moves a parameter by about the learning rate a step, so at
lr 1e-3 and 300 steps (the recipe when this was measured; 600 now) an unscaled logit could
move by 0.3 at most (a gate of 0.43-0.57; 0.35-0.65 at 600). If this model does not beat the lambda_1 = 0 control, no
gate driven by the domain, however well inferred, helps on the corpus. An analysis model: a new
recording does not come with its speaker's gender, so predict and export refuse it.
"""

import math

import flax.linen as nn
import jax.numpy as jnp

from adarl_jax.model.pathways import ClassCenters, EmotionPathway, outputs
from adarl_jax.model.registry import register_variant
from adarl_jax.model.spec import ModelSpec


def f4_rows(n_bins: int, block_pools) -> int:
    """Frequency rows of F_4: each block's pool floors the height."""
    for pool_f, _ in block_pools:
        n_bins = math.floor(n_bins / pool_f)
    return n_bins


class DomainGate(nn.Module):
    """sigmoid(gate_scale * onehot @ P): the gate of each sample's domain, P (domains, rows)
    learnt from 0. `produces_attention`: what `adarl-jax analyze` replaces."""

    rows: int
    num_domains: int
    scale: float
    produces_attention = True

    @nn.compact
    def __call__(self, onehot):
        p = self.param("gate_logits", nn.initializers.zeros, (self.num_domains, self.rows), jnp.float32)
        return nn.sigmoid(onehot.astype(jnp.float32) @ p * self.scale)


@register_variant("oracle_gate", uses_domain=False, uses_functionals=True,
                  defaults={"functionals": "domain", "gate_scale": 10.0})
class OracleGate(nn.Module):
    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool = False, functionals=None):
        if functionals is None:
            raise ValueError("oracle_gate reads each segment's domain one-hot: pass functionals "
                             "(B, num_domains) with model.functionals='domain'")
        attention = DomainGate(f4_rows(x.shape[1], self.spec.block_pools), self.spec.num_domains,
                               float(self.spec.gate_scale), name="gate")(functionals)
        _, feature, logits = EmotionPathway(self.spec, name="emotion")(x, train, attention)
        centers = ClassCenters(self.spec.num_classes, self.spec.hidden, name="centers")()
        return outputs(logits, feature, centers, attention=attention)
