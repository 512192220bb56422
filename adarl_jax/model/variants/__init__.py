"""The built-in variants, one module each: every module in this folder is imported (so its
`register_variant` runs) when `adarl_jax.model` is."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
