"""adarl-jax: ADARL (Fan et al., Interspeech 2020) in JAX/Flax.

The names a user needs, imported on first use (so `import adarl_jax` stays cheap: no jax):

  from adarl_jax import Predictor
  p = Predictor.from_pretrained("emodb")          # the model shipped in the package
  p.predict_files(["clip.wav"])                   # [{'emotion': ..., 'probs': {...}, ...}]
  p.predict_batch([wave1, wave2], 16000)          # in-memory recordings, any rate

  Predictor         a trained model over audio files and waveforms (adarl_jax.inference.predict)
  load_config       a config by name, file or a run's config.json (adarl_jax.config)
  read_inputs       audio paths (and speakers) from files, folders, lists, CSVs (predict_io)
  write_predictions predictions as CSV or JSON rows (adarl_jax.inference.predict_io)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "Predictor": "adarl_jax.inference.predict",
    "load_config": "adarl_jax.config",
    "read_inputs": "adarl_jax.inference.predict_io",
    "write_predictions": "adarl_jax.inference.predict_io",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'adarl_jax' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
