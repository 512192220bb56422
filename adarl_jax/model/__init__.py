"""The ADARL model tree (Table 1) and its variants.

A variant outside the package needs this one import (see examples/se_attention.py):

  from adarl_jax.model import ClassCenters, ConvPathway, EmotionHead, ModelSpec, outputs, register_variant
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from adarl_jax.model.layers import (ChannelwiseDense, ConvPathway, DomainAwareAttention, FeatureHead,
                                    FunctionalsHead, gradient_reversal)
from adarl_jax.model.pathways import ClassCenters, DomainPathway, EmotionHead, EmotionPathway, outputs
from adarl_jax.model.registry import (VariantInfo, check_domain_head, get_variant, reads_functionals,
                                      register_variant, variant_names, variant_of)
from adarl_jax.model.spec import ModelSpec
from adarl_jax.model import variants  # noqa: E402,F401  (last: registers the built-in variants)

__all__ = ["ChannelwiseDense", "ClassCenters", "ConvPathway", "DomainAwareAttention", "DomainPathway",
           "EmotionHead", "EmotionPathway", "FeatureHead", "FunctionalsHead", "ModelSpec", "VariantInfo", "build_model",
           "get_variant", "gradient_reversal", "init_variables", "outputs", "param_counts",
           "reads_functionals", "register_variant", "variant_names", "variant_of"]


def build_model(config):
    """The Flax module named by config.model.variant (imported from config.model.variant_file
    when set), with the variant's own settings from config.model or its defaults."""
    info = variant_of(config)
    return info.module(ModelSpec.from_config(config, info.settings(config.model)))


def _init(model, input_shape: tuple, functionals_dim: int, rng):
    dummy = jnp.zeros((1, *input_shape), jnp.float32)
    kwargs = {"functionals": jnp.zeros((1, functionals_dim), jnp.float32)} if functionals_dim else {}
    return model.init_with_output(rng, dummy, train=False, **kwargs)


# one program per (model, shapes): equal modules (a frozen spec) hash alike, so every fold of a
# variant initialises with the first fold's compiled program
_shared_init = jax.jit(_init, static_argnums=(0, 1, 2))


def init_variables(model, input_shape, rng, functionals_dim: int = 0):
    """{'params', 'batch_stats'} for inputs of shape (freq, time, channels) (and, for a variant
    that reads them, `functionals_dim` functionals per segment)."""
    if reads_functionals(model):
        if functionals_dim < 1:
            raise ValueError(f"{type(model).__name__} reads functionals: give functionals_dim")
    else:
        functionals_dim = 0
    static = (model, tuple(int(n) for n in input_shape), int(functionals_dim))
    try:
        hash(static)
        init = functools.partial(_shared_init, *static)
    except TypeError:  # a module with an unhashable field: a program of its own
        init = jax.jit(functools.partial(_init, *static))
    outputs, variables = init(rng)
    check_domain_head(type(model), outputs)
    return dict(variables)


def param_counts(params) -> dict[str, int]:
    """Trainable parameter count per top-level module, plus 'total'."""
    counts = {k: sum(int(x.size) for x in jax.tree.leaves(v)) for k, v in params.items()}
    counts["total"] = sum(counts.values())
    return counts
