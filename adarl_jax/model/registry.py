"""The variant registry: a config string names a Flax module.

A fork adds a variant by dropping one file into `adarl_jax/model/variants/` that defines a
module taking `spec: ModelSpec` and returning `pathways.outputs(...)`, decorated with
`@register_variant("name", uses_domain=...)`. Every module in that folder is imported when the
registry is first read, so nothing else needs to change. Variants defined elsewhere register
the same way once their module is imported.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

_VARIANTS: dict[str, "VariantInfo"] = {}
_discovered = False


@dataclasses.dataclass(frozen=True)
class VariantInfo:
    name: str
    module: type
    uses_domain: bool  # trains a gender head: needs both genders in the training data


def register_variant(name: str, uses_domain: bool):
    def wrap(cls):
        old = _VARIANTS.get(name)
        if old is not None and (old.module.__module__, old.module.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"variant {name!r} is already registered by {_VARIANTS[name].module}")
        _VARIANTS[name] = VariantInfo(name, cls, uses_domain)
        return cls

    return wrap


def _discover():
    global _discovered
    if _discovered:
        return
    from adarl_jax.model import variants

    for info in pkgutil.iter_modules(variants.__path__):
        importlib.import_module(f"{variants.__name__}.{info.name}")
    _discovered = True


def get_variant(name: str) -> VariantInfo:
    _discover()
    if name not in _VARIANTS:
        raise KeyError(f"model.variant={name!r} is not registered; known: {sorted(_VARIANTS)}")
    return _VARIANTS[name]


def variant_names() -> list[str]:
    _discover()
    return sorted(_VARIANTS)
