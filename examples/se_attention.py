"""`se_attention`: the emotion pathway with squeeze-and-excitation channel attention on F_4.

A variant outside the package. Train it with
    adarl-jax train --config.model.variant_file=examples/se_attention.py \
        --config.model.variant=se_attention [--config.model.se_ratio=8] ...
The path is recorded in the run's config.json, so predict and export load this file too.

Idea: squeeze F_4 over frequency and time to one value per channel, excite through a
bottleneck of C / se_ratio units, and gate F_4's channels with the result before the usual
`EmotionHead` (time pooling -> channel-wise FC -> feature head). No gender head (uses_domain=False).
"""

import flax.linen as nn

from adarl_jax.model import ClassCenters, ConvPathway, EmotionHead, ModelSpec, outputs, register_variant


class SqueezeExcite(nn.Module):
    """(B, H, W, C) -> its channels gated by sigmoid(FC(relu(FC(mean over H, W))))."""

    ratio: int

    @nn.compact
    def __call__(self, f4):
        channels = f4.shape[-1]
        squeezed = f4.mean(axis=(1, 2))
        hidden = nn.relu(nn.Dense(max(channels // self.ratio, 1), name="squeeze")(squeezed))
        gate = nn.sigmoid(nn.Dense(channels, name="excite")(hidden))
        return f4 * gate[:, None, None, :].astype(f4.dtype)


@register_variant("se_attention", uses_domain=False, defaults={"se_ratio": 4})
class SEAttention(nn.Module):
    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool = False):
        s = self.spec
        f4 = ConvPathway(**s.pathway_kwargs(), name="convs")(x, train)
        f4 = SqueezeExcite(s.se_ratio, name="se")(f4)
        feature, logits = EmotionHead(s)(f4, train)  # time pooling -> CFC -> feature head
        centers = ClassCenters(s.num_classes, s.hidden, name="centers")()
        return outputs(logits, feature, centers)
