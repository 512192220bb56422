"""The variant registry: a config string names a Flax module.

A fork adds a variant by writing one file that defines a module taking `spec: ModelSpec` and
returning `pathways.outputs(...)`, decorated with
`@register_variant("name", uses_domain=..., defaults={...})`. The file either lives in
`adarl_jax/model/variants/` (every module there is imported with `adarl_jax.model`) or
anywhere else, named by `config.model.variant_file` (imported before `model.variant` is
resolved; recorded in a run's config.json, so predict and export load it too).

`defaults` are the variant's own settings: each becomes a `config.model.<key>` field that
overrides may set (`--config.model.<key>=...`) and that the module reads as `spec.<key>`.
`uses_domain` is the one answer to "does this variant train a gender head" (so: does it need
a domain label for every training utterance and two domain values in every fold).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

_VARIANTS: dict[str, "VariantInfo"] = {}
VARIANT_FILE = "variant_file"  # config.model field naming a variant module outside the package


@dataclasses.dataclass(frozen=True)
class VariantInfo:
    name: str
    module: type
    uses_domain: bool  # trains a gender head: needs both genders in the training data
    defaults: tuple = ()  # ((setting, default), ...): the variant's own config.model fields

    def settings(self, model_config) -> dict:
        """{setting: value} of this variant's own fields, from `config.model` or the default."""
        return {k: model_config.get(k, v) for k, v in self.defaults}


def register_variant(name: str, uses_domain: bool, defaults: dict | None = None):
    defaults = tuple(sorted((defaults or {}).items()))

    def wrap(cls):
        old = _VARIANTS.get(name)
        if old is not None and (old.module.__module__, old.module.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"variant {name!r} is already registered by {_VARIANTS[name].module}")
        _VARIANTS[name] = VariantInfo(name, cls, uses_domain, defaults)
        return cls

    return wrap


def load_variant_file(path: str) -> None:
    """Imports the variant module at `path` (its decorators register it); '' does nothing."""
    if not path:
        return
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"model.{VARIANT_FILE}={path!r}: no such file")
    name = f"adarl_variant_file_{file.stem}"
    try:
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as e:
        raise ImportError(f"model.{VARIANT_FILE}={path!r} could not be imported: "
                          f"{type(e).__name__}: {e}") from e


def get_variant(name: str) -> VariantInfo:
    if name not in _VARIANTS:
        raise KeyError(f"model.variant={name!r} is not registered; known: {sorted(_VARIANTS)} "
                       f"(a variant outside the package needs model.{VARIANT_FILE})")
    return _VARIANTS[name]


def variant_of(config) -> VariantInfo:
    """The variant `config` names, after importing its `model.variant_file` if it has one."""
    load_variant_file(config.model.get(VARIANT_FILE, ""))
    return get_variant(config.model.variant)


def declared_settings(config) -> dict:
    """{field: default} of the config.model fields that variants declare (and variant_file)."""
    load_variant_file(config.model.get(VARIANT_FILE, ""))
    declared = {VARIANT_FILE: ""}
    for info in _VARIANTS.values():
        declared.update(info.defaults)
    return declared


def check_domain_head(module: type, outputs: dict) -> None:
    """A registered variant that declares uses_domain returns 'domain_logits' (the losses
    train on them, the fold checks read the registry). The converse is allowed: a variant
    may return domain logits it does not train (`adarl_no_domain_loss`, behind a
    stop-gradient), which the reports then score."""
    for info in _VARIANTS.values():
        if info.module is module and info.uses_domain and "domain_logits" not in outputs:
            raise ValueError(f"variant {info.name!r} is registered with uses_domain=True "
                             "but its outputs lack 'domain_logits'")


def variant_names() -> list[str]:
    return sorted(_VARIANTS)
