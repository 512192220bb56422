"""The two pathways of Fig. 2 and the learned class centres, shared by every variant."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from adarl_jax.model.layers import (ChannelwiseDense, ConvPathway, FeatureHead,
                                    embed_domain_attention, shared_input_convs, xavier)
from adarl_jax.model.spec import ModelSpec


class EmotionHead(nn.Module):
    """F_4 (B, H, W, C) -> TP (mean over time) -> CFC (Eq. 2) -> feature head (Eq. 3).

    Returns (deep feature, emotion logits). The end of every emotion pathway: a variant that
    changes what happens before it (an attention on F_4, another pooling of the blocks) calls
    `EmotionHead(spec)(f4, train)`. Its parameters are the calling module's 'cfc' and 'head'
    (it shares the caller's scope, `nn.share_scope`), so they keep one layout whoever calls it;
    one call per module.
    """

    spec: ModelSpec

    def setup(self):
        nn.share_scope(self, self.parent)

    @nn.compact
    def __call__(self, f4, train: bool):
        s = self.spec
        cfc = ChannelwiseDense(s.dtype, s.channelwise_init, name="cfc")(f4.mean(axis=2))
        return FeatureHead(s.hidden, s.num_classes, s.bn_momentum, s.dtype, name="head")(cfc, train)


class EmotionPathway(nn.Module):
    """Blocks -> F_4^E -> [frequency attention, Eq. 5] -> `EmotionHead`.

    Returns (F_4^E before attention, deep feature, emotion logits). `attention` is an
    optional (batch, H) weight per frequency row of F_4^E.
    """

    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool, attention=None, first_convolved=None):
        f4 = ConvPathway(**self.spec.pathway_kwargs(), name="convs")(x, train, first_convolved)
        emb = f4 if attention is None else embed_domain_attention(f4, attention)
        feature, logits = EmotionHead(self.spec)(emb, train)
        return f4, feature, logits


class DomainPathway(nn.Module):
    """Blocks -> F_4^D -> flatten -> head (Eq. 1). Returns (F_4^D, domain logits)."""

    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool, first_convolved=None):
        f4 = ConvPathway(**self.spec.pathway_kwargs(), name="convs")(x, train, first_convolved)
        _, logits = FeatureHead(self.spec.hidden, self.spec.num_domains,
                                self.spec.bn_momentum, self.spec.dtype, name="head")(
            f4.reshape(f4.shape[0], -1), train)
        return f4, logits


def first_convs_of_pathways(module: nn.Module, x, names, spec: ModelSpec) -> dict:
    """{pathway name: its block 1's convolutions of `x`}, computed as one convolution
    (`shared_input_convs`) from the kernels in the pathways' own parameters, for the pathways
    `names` (submodules of `module`) that all read `x`. Empty when `spec.shared_first_conv` is
    off or while initialising (the pathways then create their kernels and convolve themselves).
    """
    if not spec.shared_first_conv or module.is_initializing():
        return {}
    params = module.variables["params"]
    blocks = [params[n]["convs"]["block1"] for n in names]
    return dict(zip(names, shared_input_convs(x, blocks, spec.kernel_sizes, spec.dtype)))


class ClassCenters(nn.Module):
    """The centres c_k of the centre loss (Eq. 8), learned, Xavier-initialised."""

    num_classes: int
    dim: int

    @nn.compact
    def __call__(self):
        return self.param("centers", xavier, (self.num_classes, self.dim))


def outputs(emotion_logits, deep_feature, centers, domain_logits=None, attention=None,
            emotion_heads=None) -> dict:
    """The dict every variant returns; the loss and the evaluators read only these keys.
    `emotion_heads`: logits the emotion loss trains one by one instead of `emotion_logits`
    (which is then their combination, what predictions read)."""
    out = {"emotion_logits": emotion_logits.astype(jnp.float32),
           "deep_feature": deep_feature.astype(jnp.float32), "centers": centers}
    if domain_logits is not None:
        out["domain_logits"] = domain_logits.astype(jnp.float32)
    if attention is not None:
        out["attention"] = attention.astype(jnp.float32)
    if emotion_heads is not None:
        out["emotion_heads"] = tuple(h.astype(jnp.float32) for h in emotion_heads)
    return out
