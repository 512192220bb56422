"""Optional dependencies: `pip install adarl-jax` pulls only what training and inference need;
the rest come with extras, and a command that needs a missing one says which to install.

  report     matplotlib, scikit-learn   the report's figures (confusion matrices, t-SNE)
  baselines  opensmile, scikit-learn    the openSMILE + linear SVM baselines
  all        every extra above

  TSNE = require("sklearn.manifold", "report", "the t-SNE figures").TSNE
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """The imported `module`, or MissingExtraError: '<purpose> needs the `<package>` package:
    pip install 'adarl-jax[<extra>]'' (a native library that fails to load counts as
    missing too)."""
    try:
        return importlib.import_module(module)
    except Exception as e:  # ImportError, or its native library failing to load
        package = {"sklearn": "scikit-learn"}.get(module.split(".")[0], module.split(".")[0])
        raise MissingExtraError(f"{purpose} needs the `{package}` package: "
                                f"pip install 'adarl-jax[{extra}]'") from e
