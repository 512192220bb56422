"""A run keeps the variant file it trained: a copy in its folder, loaded from there and checked
against its SHA-256 (adarl_jax.model.registry loads and checks it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from adarl_jax.model.registry import VARIANT_FILE, VARIANT_SHA256, load_config_variant_file
from adarl_jax.workdir.files import write_bytes_atomic

__all__ = ["KEPT_DIR", "keep_variant_file"]

KEPT_DIR = "variants"  # W/variants/<sha256[:16]>/<name>.py, and a model folder's variants/...


def keep_variant_file(config, folder, relative: bool = False) -> None:
    """Copies `config.model.variant_file` (when set) into `folder`/variants/<sha256[:16]>/ and
    points the config at the copy, with its SHA-256 in `model.variant_sha256`, in place: the
    run then loads the copy, and editing or moving the original changes nothing. The copy's
    path is absolute, or relative to `folder` (a model folder, which may move). A file that no
    longer matches a SHA-256 the config already records is refused, naming it."""
    path = config.model.get(VARIANT_FILE, "")
    if not path:
        return
    load_config_variant_file(config)  # a missing or changed file fails here, naming it
    data = Path(path).expanduser().read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    kept = Path(KEPT_DIR) / sha256[:16] / Path(path).name
    target = Path(folder) / kept
    if not (target.is_file() and target.read_bytes() == data):
        write_bytes_atomic(target, data)
    with config.model.unlocked():
        config.model[VARIANT_FILE] = str(kept) if relative else str(target.resolve())
        config.model[VARIANT_SHA256] = sha256
