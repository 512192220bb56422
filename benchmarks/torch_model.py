"""The `adarl` variant written plainly in PyTorch: the comparison baseline of the benchmarks.

Same tree as `adarl_jax/model` (Table 1, Eq. 1-5, 9, 10): two pathways of four multi-scale
blocks (parallel 3x3 and 5x5 'same' convs, concat, BatchNorm, ReLU, average pool), the
domain head on the flattened domain F_4, the frequency attention from the domain F_4, the
emotion pathway's time pooling, channel-wise FC and head, learned class centres. Xavier-uniform
init and zero biases as in flax; BatchNorm eps 1e-5, momentum 0.1 (= flax's 0.9). Loss =
CE(domain) + CE(emotion) + 0.5 * centre loss with the same label masks; SGD lr 0.2, coupled
weight decay 4e-5 (what optax.add_decayed_weights + sgd does).

Layout is NCHW = (batch, channels, freq, time); `memory_format=torch.channels_last` is the
caller's choice. The domain F_4 is flattened in flax's (freq, time, channels) order so that
`load_flax_variables` copies a flax model's weights unchanged.

One known difference, irrelevant to speed: torch updates the running variance with the
unbiased batch variance, flax with the biased one.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-5


def _xavier(t: torch.Tensor) -> torch.Tensor:
    # torch and flax compute the same fans for conv (receptive field x channels) and 2-D shapes.
    return nn.init.xavier_uniform_(t)


def _pair(k) -> tuple[int, int]:
    """A kernel size as (frequency, time); an int k means (k, k), as in adarl_jax's config."""
    return (int(k), int(k)) if isinstance(k, (int, np.integer)) else (int(k[0]), int(k[1]))


class MultiScaleConvBlock(nn.Module):
    """Eq. 10: avg_pool(ReLU(BN(concat(conv3x3(x), conv5x5(x)))))."""

    def __init__(self, in_channels: int, features: Sequence[int], kernel_sizes: Sequence[int],
                 pool: Sequence[int], bias: bool = True):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, f, _pair(k), padding=tuple(s // 2 for s in _pair(k)), bias=bias)
            for f, k in zip(features, kernel_sizes))
        for c in self.convs:
            _xavier(c.weight)
            if c.bias is not None:
                nn.init.zeros_(c.bias)
        self.bn = nn.BatchNorm2d(sum(features), eps=BN_EPS, momentum=0.1)
        self.pool = tuple(pool)

    def forward(self, x):
        x = torch.cat([c(x) for c in self.convs], dim=1)
        x = F.relu(self.bn(x))
        if self.pool != (1, 1):
            x = F.avg_pool2d(x, self.pool, self.pool)
        return x


class ConvPathway(nn.Sequential):
    def __init__(self, in_channels, block_features, block_pools, kernel_sizes, bias=True):
        blocks, c = [], in_channels
        for features, pool in zip(block_features, block_pools):
            blocks.append(MultiScaleConvBlock(c, features, kernel_sizes, pool, bias))
            c = sum(features)
        super().__init__(*blocks)


class FeatureHead(nn.Module):
    """FC -> ReLU -> BN = deep feature; FC = logits (Eq. 1 / Eq. 3)."""

    def __init__(self, in_features: int, hidden: int, num_classes: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.bn = nn.BatchNorm1d(hidden, eps=BN_EPS, momentum=0.1)
        self.fc2 = nn.Linear(hidden, num_classes)
        for fc in (self.fc1, self.fc2):
            _xavier(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, x):
        feature = self.bn(F.relu(self.fc1(x)))
        return feature, self.fc2(feature)


class ADARL(nn.Module):
    """The paper's model. forward(x (B, 3, freq, time)) -> dict like adarl_jax's outputs()."""

    def __init__(self, input_hw: Sequence[int], num_classes: int = 4, num_domains: int = 2,
                 block_features=((16, 16), (16, 16), (16, 16), (32, 32)),
                 block_pools=((5, 5), (2, 2), (5, 5), (1, 1)), kernel_sizes=(3, 5),
                 conv_bias: bool = True, hidden: int = 64, attention_hidden: int = 4,
                 in_channels: int = 3):
        super().__init__()
        h, w = input_hw
        for ph, pw in block_pools:
            h, w = h // ph, w // pw
        c = sum(block_features[-1])
        self.f4_shape = (c, h, w)
        self.kernel_sizes = tuple(_pair(k) for k in kernel_sizes)
        self.domain_convs = ConvPathway(in_channels, block_features, block_pools, kernel_sizes, conv_bias)
        self.domain_head = FeatureHead(c * h * w, hidden, num_domains)
        self.att_fc1 = nn.Linear(h, attention_hidden)
        self.att_fc2 = nn.Linear(attention_hidden, h)
        self.emotion_convs = ConvPathway(in_channels, block_features, block_pools, kernel_sizes, conv_bias)
        self.cfc_kernel = nn.Parameter(_xavier(torch.empty(h, c)))  # Eq. 2, (H, C) as in flax
        self.cfc_bias = nn.Parameter(torch.zeros(c))
        self.emotion_head = FeatureHead(c, hidden, num_classes)
        self.centers = nn.Parameter(_xavier(torch.empty(num_classes, hidden)))
        for fc in (self.att_fc1, self.att_fc2):
            _xavier(fc.weight)
            nn.init.zeros_(fc.bias)

    @classmethod
    def from_config(cls, config) -> "ADARL":
        """Built from an adarl_jax config (ml_collections), read by field name only."""
        m = config.model
        return cls(input_hw=(config.frontend.n_bins, config.frontend.n_frames),
                   num_classes=len(config.data.classes), num_domains=len(config.data.genders),
                   block_features=tuple(tuple(f) for f in m.block_features),
                   block_pools=tuple(tuple(p) for p in m.block_pools),
                   kernel_sizes=tuple(_pair(k) for k in m.kernel_sizes), conv_bias=bool(m.conv_bias),
                   hidden=int(m.hidden), attention_hidden=int(m.attention_hidden))

    def forward(self, x) -> dict:
        domain_f4 = self.domain_convs(x)  # (B, C, H, W)
        flat = domain_f4.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # flax's (H, W, C) order
        _, domain_logits = self.domain_head(flat)
        pooled = domain_f4.mean(dim=3).mean(dim=1)  # TP then CP -> (B, H), Eq. 4
        attention = torch.sigmoid(self.att_fc2(F.relu(self.att_fc1(pooled))))
        emotion_f4 = self.emotion_convs(x)
        emb = emotion_f4 * attention[:, None, :, None]  # Eq. 5: scale each frequency row
        tp = emb.mean(dim=3)  # (B, C, H)
        cfc = torch.einsum("bch,hc->bc", tp, self.cfc_kernel) + self.cfc_bias
        feature, logits = self.emotion_head(cfc)
        return {"emotion_logits": logits, "deep_feature": feature, "centers": self.centers,
                "domain_logits": domain_logits, "attention": attention}


def _masked_mean(values, mask):
    return (values * mask).sum() / mask.sum().clamp_min(1e-8)


def total_loss(out: dict, emotion, domain, weight, weights=(1.0, 1.0, 0.5)):
    """Eq. 9 with adarl_jax.train.losses' masks: emotion < 0 / domain < 0 / weight 0 drop a term."""
    g1, g2, g3 = weights
    emo_mask = weight * (emotion >= 0)
    dom_mask = weight * (domain >= 0)
    safe_emo = emotion.clamp_min(0)
    l_emo = _masked_mean(F.cross_entropy(out["emotion_logits"], safe_emo, reduction="none"), emo_mask)
    diff = out["deep_feature"] - out["centers"][safe_emo]
    l_cen = _masked_mean((diff * diff).sum(-1), emo_mask)
    l_dom = _masked_mean(F.cross_entropy(out["domain_logits"], domain.clamp_min(0), reduction="none"),
                         dom_mask)
    return g1 * l_dom + g2 * l_emo + g3 * l_cen


def make_optimizer(model: nn.Module, lr: float = 0.2, weight_decay: float = 4e-5,
                   momentum: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                           weight_decay=weight_decay, foreach=True)


def make_train_step(model: nn.Module, opt: torch.optim.Optimizer, compile: bool = False,
                    **compile_kwargs):
    """step(x, emotion, domain, weight) -> loss tensor; forward+loss compiled if asked."""

    def loss_fn(x, emotion, domain, weight):
        return total_loss(model(x), emotion, domain, weight)

    if compile:
        loss_fn = torch.compile(loss_fn, **compile_kwargs)

    def step(x, emotion, domain, weight):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x, emotion, domain, weight)
        loss.backward()
        opt.step()
        return loss

    return step


# ---------------------------------------------------------------------------------------------
# Weights from flax


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, copy=True))


def _conv_block(sd, prefix, p, s, kernel_sizes):
    for i, k in enumerate(kernel_sizes):
        kf, kt = _pair(k)
        conv = p[f"conv{kf}x{kt}"]
        sd[f"{prefix}.convs.{i}.weight"] = _t(conv["kernel"]).permute(3, 2, 0, 1).contiguous()
        if "bias" in conv:
            sd[f"{prefix}.convs.{i}.bias"] = _t(conv["bias"])
    _bn(sd, f"{prefix}.bn", p["bn"], s["bn"])


def _bn(sd, prefix, p, s):
    sd[f"{prefix}.weight"] = _t(p["scale"])
    sd[f"{prefix}.bias"] = _t(p["bias"])
    sd[f"{prefix}.running_mean"] = _t(s["mean"])
    sd[f"{prefix}.running_var"] = _t(s["var"])


def _dense(sd, prefix, p):
    sd[f"{prefix}.weight"] = _t(p["kernel"]).T.contiguous()
    sd[f"{prefix}.bias"] = _t(p["bias"])


def _head(sd, prefix, p, s):
    _dense(sd, f"{prefix}.fc1", p["fc1"])
    _bn(sd, f"{prefix}.bn", p["bn"], s["bn"])
    _dense(sd, f"{prefix}.fc2", p["fc2"])


def load_flax_variables(model: ADARL, variables: Mapping, kernel_sizes=None) -> ADARL:
    """Copies an adarl_jax `adarl` model's {'params', 'batch_stats'} into `model` (strict);
    `kernel_sizes` defaults to the model's own."""
    kernel_sizes = model.kernel_sizes if kernel_sizes is None else kernel_sizes
    p, s = variables["params"], variables["batch_stats"]
    sd = {}
    for path in ("domain", "emotion"):
        pc, sc = p[path]["convs"], s[path]["convs"]
        for i in range(len(pc)):
            _conv_block(sd, f"{path}_convs.{i}", pc[f"block{i + 1}"], sc[f"block{i + 1}"], kernel_sizes)
        _head(sd, f"{path}_head", p[path]["head"], s[path]["head"])
    _dense(sd, "att_fc1", p["attention"]["fc1"])
    _dense(sd, "att_fc2", p["attention"]["fc2"])
    sd["cfc_kernel"] = _t(p["emotion"]["cfc"]["kernel"])
    sd["cfc_bias"] = _t(p["emotion"]["cfc"]["bias"])
    sd["centers"] = _t(p["centers"]["centers"])
    for k, v in model.state_dict().items():  # BN's num_batches_tracked: keep torch's own
        sd.setdefault(k, v)
    model.load_state_dict(sd, strict=True)
    return model

