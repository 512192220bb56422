"""The variant registry: a config string names a Flax module.

A fork adds a variant by writing one file that defines a module taking `spec: ModelSpec` and
returning `pathways.outputs(...)`, decorated with
`@register_variant("name", uses_domain=..., defaults={...})`. The file either lives in
`adarl_jax/model/variants/` (every module there is imported with `adarl_jax.model`) or
anywhere else, named by `config.model.variant_file` (imported before `model.variant` is
resolved). A run keeps what it trained: `keep_variant_file` copies the file into the workdir
(`W/variants/<sha256[:16]>/<name>.py`, adarl_jax.workdir.kept_variant) and points the config at
the copy, with its SHA-256 (`model.variant_sha256`), before config.json is written; predict and export load that copy,
and refuse it, naming it, once it no longer matches the hash. Moving, editing or deleting the
original changes nothing. A final model folder holds its own copy (adarl_jax.inference.model_folder).

`defaults` are the variant's own settings: each becomes a `config.model.<key>` field that
overrides may set (`--config.model.<key>=...`) and that the module reads as `spec.<key>`;
`with_declared_settings` writes the defaults into the config, so config.json records them all.
`uses_domain` is the one answer to "does this variant train a gender head" (so: does it need
a domain label for every training utterance and two domain values in every fold).
`uses_functionals`: the module's `__call__(x, train, functionals=None)` also reads one vector
of openSMILE functionals per segment (its utterance's, `config.model.functionals` names the
set: a setting the variant declares); the pipeline extracts, standardises and passes them
(adarl_jax.data.functionals), and callers learn whether to from `reads_functionals(model)`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from pathlib import Path

_VARIANTS: dict[str, "VariantInfo"] = {}
VARIANT_FILE = "variant_file"  # config.model field naming a variant module outside the package
VARIANT_SHA256 = "variant_sha256"  # config.model field: the SHA-256 of the kept copy of that file


@dataclasses.dataclass(frozen=True)
class VariantInfo:
    name: str
    module: type
    uses_domain: bool  # trains a gender head: needs both genders in the training data
    defaults: tuple = ()  # ((setting, default), ...): the variant's own config.model fields
    uses_functionals: bool = False  # reads `functionals` (B, d): see the module docstring

    def settings(self, model_config) -> dict:
        """{setting: value} of this variant's own fields, from `config.model` or the default."""
        return {k: model_config.get(k, v) for k, v in self.defaults}


def register_variant(name: str, uses_domain: bool, defaults: dict | None = None,
                     uses_functionals: bool = False):
    defaults = tuple(sorted((defaults or {}).items()))
    if uses_functionals and "functionals" not in dict(defaults):
        raise ValueError(f"variant {name!r} reads functionals: declare the set as a setting, "
                         "defaults={'functionals': 'egemaps'}")

    def wrap(cls):
        old = _VARIANTS.get(name)
        if old is not None and (old.module.__module__, old.module.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"variant {name!r} is already registered by {_VARIANTS[name].module}")
        _VARIANTS[name] = VariantInfo(name, cls, uses_domain, defaults, uses_functionals)
        return cls

    return wrap


class VariantFileChangedError(ValueError):
    """A kept variant file no longer matches the SHA-256 recorded with it."""


def load_variant_file(path: str, sha256: str = "") -> None:
    """Imports the variant module at `path` (its decorators register it); '' does nothing.
    With `sha256` (a kept copy's), refuses a file whose content no longer matches it."""
    if not path:
        return
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"model.{VARIANT_FILE}={path!r}: no such file")
    if sha256 and hashlib.sha256(file.read_bytes()).hexdigest() != sha256:
        raise VariantFileChangedError(
            f"{file}: this variant file was changed after the run that kept it (its SHA-256 is no "
            f"longer model.{VARIANT_SHA256}={sha256[:16]}...); refusing to build another model "
            "than the one trained")
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


def load_config_variant_file(config) -> None:
    """Imports `config.model.variant_file` (when set), checked against `model.variant_sha256`."""
    load_variant_file(config.model.get(VARIANT_FILE, ""), config.model.get(VARIANT_SHA256, ""))


def variant_of(config) -> VariantInfo:
    """The variant `config` names, after importing its `model.variant_file` if it has one."""
    load_config_variant_file(config)
    return get_variant(config.model.variant)


def with_declared_settings(config) -> None:
    """Writes the settings the config's variant declares and the config leaves unset (their
    defaults) into `config.model`, in place: a saved config then records every setting its
    model was built with, so a later change of a default changes no saved run."""
    try:
        info = variant_of(config)
    except KeyError:  # an unknown variant fails where the model is built, naming the known ones
        return
    missing = {k: v for k, v in info.defaults if k not in config.model}
    if missing:
        with config.model.unlocked():
            config.model.update(missing)


def use_variant(config, name: str) -> None:
    """Sets `config.model.variant` to `name` and writes that variant's declared settings the
    config leaves unset (their defaults): the one way a command switches a config's variant."""
    config.model.variant = name
    with_declared_settings(config)


def declared_settings(config) -> dict:
    """{field: default} of the config.model fields that variants declare (and variant_file,
    variant_sha256)."""
    load_config_variant_file(config)
    declared = {VARIANT_FILE: "", VARIANT_SHA256: ""}
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


def reads_functionals(model) -> bool:
    """Whether a built model (a registered variant's module) takes `functionals`."""
    return any(info.module is type(model) and info.uses_functionals for info in _VARIANTS.values())


def variant_names() -> list[str]:
    return sorted(_VARIANTS)
