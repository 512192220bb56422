"""The model's hyper-parameters as a frozen, hashable record built from the config."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from adarl_jax.model.layers import CHANNELWISE_INITS, FIRST_CONVS, kernel_pairs
from adarl_jax.spec_fields import cast_fields


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    num_classes: int
    num_domains: int = 2
    block_features: tuple = ((16, 16), (16, 16), (16, 16), (32, 32))
    block_pools: tuple = ((5, 5), (2, 2), (5, 5), (1, 1))
    kernel_sizes: tuple = ((3, 3), (3, 5))  # (freq, time) per parallel conv; k means (k, k)
    conv_bias: bool = True
    hidden: int = 64
    attention_hidden: int = 4
    bn_momentum: float = 0.9
    grl_scale: float = 1.0
    dtype: Any = jnp.float32
    fused_bn_pool: bool = True
    shared_first_conv: bool = False
    first_convs: str = "direct"  # block 1's convolutions: direct | space_to_depth (layers)
    channelwise_init: str = "per_channel"  # per_channel | joint (layers.ChannelwiseDense)
    settings: tuple = ()  # ((key, value), ...): the variant's own settings, read as spec.<key>

    def __post_init__(self):
        object.__setattr__(self, "kernel_sizes", kernel_pairs(self.kernel_sizes))
        if self.first_convs not in FIRST_CONVS:
            raise ValueError(f"model.first_convs={self.first_convs!r}: expected one of "
                             f"{list(FIRST_CONVS)}")
        if self.first_convs == "space_to_depth":
            if any(n % 2 == 0 for pair in self.kernel_sizes for n in pair):
                raise ValueError(f"model.first_convs='space_to_depth' needs odd kernel sizes; "
                                 f"model.kernel_sizes={self.kernel_sizes}")
            if self.shared_first_conv:
                raise ValueError("model.first_convs='space_to_depth' and "
                                 "model.shared_first_conv=True are two ways of computing block "
                                 "1's convolutions: choose one")
        if self.channelwise_init not in CHANNELWISE_INITS:
            raise ValueError(f"model.channelwise_init={self.channelwise_init!r}: expected one of "
                             f"{sorted(CHANNELWISE_INITS)}")

    def __getattr__(self, key):
        """A variant's own setting (registry `defaults`), read as `spec.<key>`."""
        for k, v in self.__dict__.get("settings", ()):
            if k == key:
                return v
        raise AttributeError(f"ModelSpec has no field or variant setting {key!r}")

    @classmethod
    def from_config(cls, config, settings: dict | None = None) -> "ModelSpec":
        """The spec of `config.model`; `settings` are the variant's own (see the registry)."""
        m = config.model
        as_tuple = lambda v: tuple(tuple(x) if isinstance(x, (list, tuple)) else x for x in v)
        as_hashable = lambda v: as_tuple(v) if isinstance(v, (list, tuple)) else v
        return cls(
            num_classes=len(config.data.classes),
            num_domains=len(config.data.genders),
            block_features=as_tuple(m.block_features),
            block_pools=as_tuple(m.block_pools),
            kernel_sizes=kernel_pairs(m.kernel_sizes),
            dtype=jnp.dtype(m.dtype),
            **cast_fields(cls, m, ("conv_bias", "hidden", "attention_hidden", "bn_momentum",
                                   "grl_scale", "fused_bn_pool", "shared_first_conv",
                                   "first_convs", "channelwise_init")),
            settings=tuple(sorted((k, as_hashable(v)) for k, v in (settings or {}).items())),
        )

    def pathway_kwargs(self) -> dict:
        return dict(block_features=self.block_features, block_pools=self.block_pools,
                    kernel_sizes=self.kernel_sizes, use_bias=self.conv_bias,
                    bn_momentum=self.bn_momentum, dtype=self.dtype,
                    fused=self.fused_bn_pool, first_convs=self.first_convs)
