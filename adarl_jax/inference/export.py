"""A trained model as a serialized `jax.export` artifact: spectrogram in, probabilities out.

Running the artifact needs jax alone, not this package:

    import jax, numpy as np
    exported = jax.export.deserialize(bytearray(open("model.jax", "rb").read()))
    probs = np.asarray(exported.call(x))  # x (batch, F, T, 3) float32 -> (batch, K)

The batch dimension is symbolic, so one artifact serves every batch size, and it is lowered
for several platforms (cpu, cuda, tpu by default); the weights are constants inside it. With
`input='waveform'` the front end is inside too: `exported.call(waves (batch, L) float32,
lengths (batch,) int32)`, L samples of a 3 s segment at the config's sample rate, mono.
An utterance's probabilities are the mean over its segments (the caller's part).
A model standardised per speaker (frontend.normalize='speaker', the default recipe) takes the
statistics of the segments of each call: call it with one file's segments (its own
statistics, as `predict --speaker-from file`) or with all segments of one speaker (as
`--speaker-from call`), never with padding rows or other speakers' segments. The spectrogram
artifact leaves that standardisation to the caller (`adarl_jax.data.dataset.speaker_normalize`).

`<out>.json` beside the artifact records what its input means: the classes in output order,
the input shape, the front end and segmenting fields, and which checkpoint it came from.
If a model cannot be exported with a symbolic batch, one artifact per bucket size is
written instead (`model.b8.jax`, ...) and listed in the JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp

from adarl_jax.config import input_shape
from adarl_jax.workdir.files import digest, write_bytes_atomic, write_text_atomic
from adarl_jax.data.frontend import spectrogram, standardize_as_one_speaker
from adarl_jax.data.functionals import functionals_dim

__all__ = ["DEFAULT_PLATFORMS", "export_predictor", "load_exported"]

log = logging.getLogger(__name__)

DEFAULT_PLATFORMS = ("cpu", "cuda", "tpu")
FORMAT = "adarl-jax-export/1"


def _function(predictor, input: str):
    variables = predictor.variables
    if predictor.functionals_set:  # the model reads each segment's utterance's functionals too
        if input == "spectrogram":
            return jax.jit(lambda x, u: predictor.spectrogram_probs(variables, x, u))
        if input == "waveform":
            return jax.jit(lambda waves, lengths, u: predictor.spectrogram_probs(
                variables, _waveform_features(predictor, waves, lengths), u))
    if input == "spectrogram":
        return jax.jit(lambda x: predictor.spectrogram_probs(variables, x))
    if input == "waveform":
        return jax.jit(lambda waves, lengths: predictor.spectrogram_probs(
            variables, _waveform_features(predictor, waves, lengths)))
    raise ValueError(f"input={input!r}: expected 'spectrogram' or 'waveform'")


def _waveform_features(predictor, waves, lengths):
    """The model's input of waveform segments (the call's segments standardised as one speaker
    for a speaker-normalised model)."""
    x = spectrogram(waves, lengths, predictor.spec)
    if predictor.uses_speaker_norm:  # the call's segments are one speaker
        x = standardize_as_one_speaker(x, lengths, predictor.spec.hop)
    return x


def _arg_specs(predictor, input: str, batch):
    if input == "spectrogram":
        specs = (jax.ShapeDtypeStruct((batch, *input_shape(predictor.config)), jnp.float32),)
    elif input == "waveform":
        specs = (jax.ShapeDtypeStruct((batch, predictor.segment_length), jnp.float32),
                 jax.ShapeDtypeStruct((batch,), jnp.int32))
    else:
        raise ValueError(f"input={input!r}: expected 'spectrogram' or 'waveform'")
    if predictor.functionals_set:
        specs += (jax.ShapeDtypeStruct((batch, functionals_dim(predictor.config)), jnp.float32),)
    return specs


def _serialize(fn, specs, platforms) -> bytes:
    try:
        exported = jax.export.export(fn, platforms=tuple(platforms))(*specs)
        return bytes(exported.serialize())
    except ImportError as e:  # jax needs the flatbuffers package to serialize
        raise ImportError(f"{e} (pip install flatbuffers)") from e


def export_predictor(predictor, out, input: str = "spectrogram",
                     platforms: Sequence[str] = DEFAULT_PLATFORMS, symbolic: bool | None = None,
                     buckets: Sequence[int] | None = None) -> dict:
    """Writes the artifact(s) and `<out>.json`; returns that metadata.

    symbolic=None tries a symbolic batch dimension and falls back to one artifact per bucket
    (default: the predictor's buckets) if jax cannot export the model that way. A late
    fusion (`late_fusion.FusedPredictor`) exports its CNN alone, with a warning: its SVMs read
    openSMILE functionals, which no jax program computes.
    """
    if getattr(predictor, "late_fusion", None):
        log.warning("%s is a late fusion: the artifact is its CNN alone (the %s SVMs read "
                    "openSMILE functionals, which no jax program computes)", predictor.source,
                    ", ".join(predictor.late_fusion))
        predictor = predictor.predictor
    out = Path(out)
    fn = _function(predictor, input)
    files = {}
    if symbolic is not False:
        try:
            batch, = jax.export.symbolic_shape("b")
            files["b"] = _serialize(fn, _arg_specs(predictor, input, batch), platforms)
        except ImportError:
            raise
        except Exception as e:
            if symbolic:
                raise
            log.warning("symbolic batch export failed (%s); writing one artifact per bucket", e)
    if not files:
        for b in sorted(set(buckets or predictor.buckets)):
            files[b] = _serialize(fn, _arg_specs(predictor, input, b), platforms)

    written = {}
    for b, blob in files.items():
        path = out if b == "b" else out.with_name(f"{out.stem}.b{b}{out.suffix}")
        write_bytes_atomic(path, blob)
        written[str(b)] = {"file": path.name, **digest(blob)}
    c = predictor.config
    shape = (list(input_shape(c)) if input == "spectrogram" else [predictor.segment_length])
    meta = {
        "format": FORMAT,
        "input": input,
        "batch": "symbolic" if "b" in written else "buckets",
        "artifacts": written,
        "input_shape": ["batch", *shape],
        "inputs": (["x float32 (batch, freq, time, 3)"] if input == "spectrogram" else
                   ["waves float32 (batch, samples)", "lengths int32 (batch,)"]) + (
            [f"functionals float32 (batch, {functionals_dim(c)}): openSMILE "
             f"{predictor.functionals_set} of each segment's whole recording"
             + (", standardised with its speaker's statistics (zeros for one recording)"
                if c.frontend.normalize == "speaker" else ", raw")]
            if predictor.functionals_set else []),
        "output": "probabilities float32 (batch, classes)",
        "classes": list(c.data.classes),
        "platforms": list(platforms),
        "variant": c.model.variant,
        "source": predictor.source,
        "n_models": predictor.n_models,
        "data": {k: c.data[k] for k in ("sample_rate", "segment_s", "min_tail_s",
                                            "segment_hop_s", "trim_db", "level_dbfs")},
        "frontend": c.frontend.to_dict(),
        "speaker_statistics": (("waveform: of the segments of each call (one speaker, or one "
                                "file); no padding rows" if input == "waveform" else
                                "spectrogram: the caller standardises each speaker's input")
                               if predictor.uses_speaker_norm else None),
        "jax_version": jax.__version__,
    }
    text = json.dumps(meta, indent=1, default=list)
    write_text_atomic(f"{out}.json", text + "\n")
    return json.loads(text)


def load_exported(path):
    """(jax.export.Exported, metadata dict or None): the reader's side, jax alone."""
    path = Path(path)
    exported = jax.export.deserialize(bytearray(path.read_bytes()))
    meta_path = Path(f"{path}.json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    return exported, meta
