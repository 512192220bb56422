"""Batch inference with a trained fold: waveforms and audio files -> class probabilities.

An utterance's probabilities are the mean of its 3 s segments' (Sec. 3.1, as in training),
and so is its embedding (the model's deep feature). Segments from many files are packed into
batches of a few fixed sizes (`buckets`, padding the last), and the front end and the model
run in one jitted function, so after at most one compilation per bucket no file length causes
another. Files are streamed block by block (`audio.iter_segments`).

  p = Predictor.from_pretrained("emodb")         # shipped in the package (adarl_jax.pretrained)
  p = Predictor.from_checkpoint("runs/emodb", variant="adarl", fold=3)
  p = Predictor.load("runs/emodb/final/adarl")   # a model folder (adarl_jax.experiments.final_model)
  p.predict(wave, 44100)           # {'emotion': 'anger', 'probs': {...}, 'segments': 2, ...}
  p.predict_batch([w1, w2], 16000) # one such dict per in-memory recording
  p.embed(wave, 44100)             # (hidden,) float32: the mean deep feature of its segments
  p.predict_files(["a.wav", ...])  # one such dict per file; 'error' says why a file failed,
                                   # 'warning' what is suspect (silent, truncated, short,
                                   # band-limited, repeated, too little speaker audio)

A speaker-normalised model (the default recipe) standardises each input with its speaker
group's statistics (`speakers=`: adarl_jax.inference.speakers; by default each input alone, so an
input's output never depends on the rest of the call); `dataset.group_statistics` computes
them in one pass and the jitted step applies each row's own.

A model that reads openSMILE functionals (`adarl_fusion`) gets each input's, extracted from
the whole recording and standardised by the same rule: with its speaker group's statistics
under frontend.normalize='speaker' (zeros when the group is one recording: they then say
nothing), raw otherwise (the model's BatchNorm holds the training statistics).

Which checkpoint serves a fold: `fold_models`; input lists and output files: `predict_io`;
the model over spectrogram segments: `inference`; waveform preparation: `audio`; the
warning lines: `input_checks`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from adarl_jax.data.dataset import default_frontend, group_statistics
from adarl_jax.data.feature_cache import cut_options, min_samples_for
from adarl_jax.model import build_model
from adarl_jax.data.audio import (AudioError, iter_segments, level_warning, load_audio, prepare_wave,
                                  segment, trim_silence)
from adarl_jax.data.functionals import (DOMAIN_SET, functionals_of, group_zscore, moments,
                                        opensmile_extractor)
from adarl_jax.extras import require
from adarl_jax.inference.fold_models import CheckpointError, FoldRef, find_fold, restore_variables
from adarl_jax.data.frontend import FrontendSpec, spectrogram, valid_frames
from adarl_jax.train.forward import segment_outputs
from adarl_jax.inference.input_checks import band_warning, repeat_warning, short_clip_warning
from adarl_jax.inference.model_folder import (ModelFolderError, ensemble_members, folder_statistics,
                                              read_model_folder)
from adarl_jax.inference.predict_io import (AUDIO_EXTENSIONS, InputJob, expand_inputs, file_info,
                                            read_inputs, read_segments, write_embeddings,
                                            write_predictions)
from adarl_jax.pretrained import pretrained_dir
from adarl_jax.inference.speakers import (DEFAULT_SPEAKER_FROM, SPEAKER_FROM, TRAINING_GROUP,
                                         speaker_groups, speaker_warning)
from adarl_jax.workdir.statistics_file import read_statistics

__all__ = ["AUDIO_EXTENSIONS", "CheckpointError", "DEFAULT_BUCKETS", "FoldRef", "ModelFolderError",
           "Predictor", "expand_inputs", "find_fold", "plan_batches", "read_inputs",
           "restore_variables", "write_embeddings", "write_predictions"]

log = logging.getLogger(__name__)

DEFAULT_BUCKETS = (1, 8, 32)


# ---------------------------------------------------------------------------------------------
# Batching


def plan_batches(n: int, buckets: Sequence[int], overhead: float = 4.0) -> list[int]:
    """Bucket sizes, largest first, that hold n segments at the least cost.

    A batch of size b costs b + `overhead` (per-call cost, in segments): full batches of the
    largest bucket while they fill, then the cheapest mix for the rest, padding the last one.
    With (1, 8, 32): 41 -> [32, 8, 1], 7 -> [8], 15 -> [8, 8].
    """
    buckets = sorted(set(buckets))
    top = buckets[-1]
    plan = [top] * (n // top)
    rest = n % top
    best: list[tuple[float, int, list[int]]] = [(0.0, 0, [])]  # (cost, batches, plan) per r
    for r in range(1, rest + 1):
        best.append(min((best[max(r - b, 0)][0] + b + overhead, best[max(r - b, 0)][1] + 1,
                         sorted(best[max(r - b, 0)][2] + [b], reverse=True)) for b in buckets))
    return plan + best[rest][2]


def distinct_paths(paths) -> list[str]:
    """The paths in order, each file once (compared as absolute paths)."""
    return list(dict.fromkeys(os.path.abspath(os.fspath(p)) for p in paths))


class Predictor:
    """A trained model with its front end, jit-compiled once per bucket size.

      from adarl_jax import Predictor
      p = Predictor.from_pretrained("emodb")             # shipped in the package
      p = Predictor.load("runs/emodb/final/adarl")       # a model folder (train --final)
      p = Predictor.from_checkpoint("runs/emodb", fold=3)  # one LOSO fold's model
      p.predict_files(["a.wav", "b.wav"])  # one dict per file: emotion, probs, speaker, ...
      p.predict_batch([w1, w2], 44100)     # in-memory recordings, segments in fixed buckets
      p.predict(wave, 16000)               # one recording
      p.classes                            # ('anger', 'happiness', 'sadness', 'neutral')

    A speaker-normalised model (frontend.normalize='speaker', the default recipe) takes each
    input's statistics from its speaker group: by default the input alone, so its output never
    depends on the other inputs of a call; `speakers=` says which inputs share a speaker
    (adarl_jax.inference.speakers), `adapt_to_speaker` fixes one speaker's statistics for what follows.
    """

    def __init__(self, config, variables, buckets: Sequence[int] = DEFAULT_BUCKETS,
                 source: str = "", n_models: int = 1, training_statistics: dict | None = None):
        """`variables` {'params', 'batch_stats'}; with n_models > 1 every leaf has a leading
        axis of that size (an ensemble, e.g. all LOSO folds) and probabilities are averaged.
        `training_statistics`: a speaker-normalised model's training speakers' pooled
        statistics (adarl_jax.workdir.statistics_file), for `speakers='training'`."""
        if not buckets or min(buckets) < 1:
            raise ValueError(f"buckets={buckets}: need at least one size >= 1")
        self.config = config
        self.classes = tuple(config.data.classes)
        self.spec = FrontendSpec.from_config(config)
        self.model = build_model(config)
        self.buckets = tuple(sorted(set(int(b) for b in buckets)))
        self.n_models = int(n_models)
        self.source = source
        d = config.data
        self.sample_rate = int(d.sample_rate)
        self.segment_s, self.min_tail_s = float(d.segment_s), float(d.min_tail_s)
        self.cut = cut_options(config)  # hop, trim and min_samples, as training cut
        self.segment_length = int(round(self.segment_s * self.sample_rate))
        self.min_samples = min_samples_for(config)
        self.variables = jax.device_put(variables)
        self.compilations = 0  # traces of the jitted function: one per bucket size seen
        # frontend.normalize='speaker': (mean, std, seconds) of the speaker being predicted, set
        # by adapt_to_speaker for every input that follows (else each call's speaker groups)
        self.speaker_norm = None
        # a model that reads functionals: the set, its extractor (made on first use) and,
        # under adapt_to_speaker, the adapted speaker's functionals statistics
        self.training_statistics = training_statistics
        self.functionals_set = functionals_of(config)
        if self.functionals_set == DOMAIN_SET:
            raise ValueError(f"model.variant={config.model.variant!r} reads each recording's true "
                             f"domain label ({', '.join(config.data.genders)}): an oracle for "
                             "LOSO analysis, which a new recording does not come with; predict "
                             "and export cannot run it")
        self._extractors = {}  # openSMILE set -> its extractor, made on first use
        self.speaker_functionals = None
        self._frontend = None  # the statistics' front end (`_statistics`), made on first use
        # (probabilities, deep features; None for an ensemble): `inference.segment_outputs`
        self._spectrogram_outputs = segment_outputs(self.model, self.n_models)
        self._infer = jax.jit(self._waves_to_probs)
        self._infer_outputs = jax.jit(self._waves_to_outputs)
        self._spectrogram_probs = jax.jit(self.spectrogram_probs)

    @classmethod
    def from_checkpoint(cls, path, variant: str | None = None, fold: int | str | None = None,
                        buckets: Sequence[int] = DEFAULT_BUCKETS) -> "Predictor":
        """The model of a trained fold (fold='all': the mean over every trained fold)."""
        refs = find_fold(path, variant, fold)
        restored = [restore_variables(r) for r in refs]
        config = restored[0][0]
        variables = [v for _, v in restored]
        if len(variables) > 1:
            variables = jax.tree.map(lambda *xs: np.stack(xs), *variables)
        else:
            variables = variables[0]
        source = "; ".join(r.describe() for r in refs) + f" in {refs[0].workdir}"
        # one fold model's training statistics (an ensemble's folds each have their own)
        kept = read_statistics(refs[0].fold_dir) if len(refs) == 1 else None
        return cls(config, variables, buckets, source, n_models=len(refs),
                   training_statistics=kept)

    @classmethod
    def load(cls, folder, buckets: Sequence[int] = DEFAULT_BUCKETS):
        """The model of a model folder (adarl_jax.inference.model_folder: `train_final` writes one):
        a Predictor, or a `late_fusion.FusedPredictor` when the folder holds a late fusion's
        SVMs. Raises ModelFolderError (a ValueError) naming the file and what is wrong with it."""
        from adarl_jax.inference.late_fusion import FusedPredictor, global_below, read_svms

        config, variables, meta = read_model_folder(folder)
        svms = read_svms(folder, meta)
        if svms is not None:  # the SVMs read openSMILE functionals: say so before any work
            require("opensmile", "baselines", f"the late fusion in {folder} (its SVMs read "
                    "openSMILE functionals; a folder of train --final --no-late-fusion holds "
                    "the CNN alone)")
        cnn = cls(config, variables, buckets, f"model folder {folder}",
                  n_models=ensemble_members(meta), training_statistics=folder_statistics(folder, meta))
        return cnn if svms is None else FusedPredictor(cnn, svms, global_below(folder, meta))

    @classmethod
    def from_pretrained(cls, name: str = "emodb",
                        buckets: Sequence[int] = DEFAULT_BUCKETS) -> "Predictor":
        """A model shipped in the package (adarl_jax.pretrained: 'emodb'), hashes checked.

          p = Predictor.from_pretrained()
          p.predict_files(["clip.wav"])[0]["emotion"]
        """
        folder = pretrained_dir(name)
        predictor = cls.load(folder, buckets)
        predictor.source = f"pretrained model {name!r} ({folder})"
        return predictor

    # -- the jitted computation ------------------------------------------------------------

    def spectrogram_probs(self, variables, x, functionals=None):
        """(B, F, T, 3) spectrograms (and (B, d) functionals, for a model that reads them) ->
        (B, K) class probabilities (what `export` saves)."""
        return self._spectrogram_outputs(variables, x, functionals)[0]

    def _waves_to_probs(self, variables, waves, lengths, norm=None, functionals=None):
        return self._waves_to_outputs(variables, waves, lengths, norm, functionals)[0]

    def _waves_to_outputs(self, variables, waves, lengths, norm=None, functionals=None):
        """norm: None, or (means, stds) of each row's speaker, (B, F, 1, C) each; functionals:
        None, or each row's input's (B, d) for a model that reads them."""
        self.compilations += 1  # Python runs here only while jax traces a new batch shape
        x = spectrogram(waves, lengths, self.spec)
        if norm is not None:  # each row's speaker's standardisation, on valid frames only
            valid = valid_frames(lengths, self.spec.hop, self.spec.n_frames)[:, None, :, None]
            x = jnp.where(valid, (x - norm[0]) / norm[1], 0.0)
        return self._spectrogram_outputs(variables, x, functionals)

    @property
    def uses_speaker_norm(self) -> bool:
        """Whether inputs are standardised with a group's statistics: the speaker's under
        frontend.normalize='speaker', the recording's own under 'utterance'."""
        return self.spec.normalize in ("speaker", "utterance")

    @property
    def default_speaker_from(self) -> str:
        """`training` for a speaker-normalised model that keeps its training statistics (on
        the validation speakers of both development corpora it beats each recording alone by
        0.2-0.3 UA, and an input's output depends on nothing else either), else `file`."""
        if self.spec.normalize == "speaker" and self.training_statistics is not None:
            return "training"
        return DEFAULT_SPEAKER_FROM

    @property
    def per_recording(self) -> bool:
        """frontend.normalize='utterance': each recording is standardised by itself, as in
        training, whatever speaker groups a caller gives."""
        return self.spec.normalize == "utterance"

    def adapt_to_speaker(self, paths=None, waveform=None, sample_rate: int | None = None) -> None:
        """frontend.normalize='speaker': take the statistics of one speaker's audio (files, or
        one waveform) for every prediction that follows, whatever its speaker groups; with
        neither, forget them (each call's groups give statistics again). Transductive, as in
        training: the speaker's own unlabelled audio, ideally more than the utterances being
        predicted.

          p.adapt_to_speaker(["spk1/a.wav", "spk1/b.wav", "spk1/c.wav"])
          p.predict_files(["spk1/d.wav"])   # standardised with a, b and c's statistics
        """
        if paths is None and waveform is None:
            self.speaker_norm = self.speaker_functionals = None
            return
        if self.per_recording:
            raise ValueError("this model was trained with frontend.normalize='utterance': each "
                             "recording is standardised by itself; there is no speaker to adapt to")
        if paths is not None:
            paths = distinct_paths(paths)
            sources = [self._file_segments(p) for p in paths]
        else:
            sources = [self._wave_segments(prepare_wave(waveform, sample_rate, self.sample_rate,
                                                        self.min_samples))]
        stats = self._statistics(sources, [0] * len(sources))
        if not stats:
            raise ValueError("no readable audio to compute speaker statistics from")
        self.speaker_norm = stats[0]
        if self.functionals_set:
            self.speaker_functionals = self.speaker_moments(self.functionals_set, paths,
                                                            waveform, sample_rate)

    def speaker_rows(self, feature_set: str, paths=None, waveform=None,
                     sample_rate: int | None = None) -> list[np.ndarray]:
        """The raw `feature_set` functionals of one speaker's distinct describable recordings,
        from files (a path repeated counts once) or one waveform."""
        loaders = ([self.file_loader(p) for p in distinct_paths(paths)] if paths is not None
                   else [lambda: prepare_wave(waveform, sample_rate, self.sample_rate,
                                              self.min_samples)])
        return [r for r in (self.raw_functionals(load, feature_set) for load in loaders)
                if r is not None]

    def speaker_moments(self, feature_set: str, paths=None, waveform=None,
                        sample_rate: int | None = None):
        """(mean, std) of one speaker's `feature_set` functionals (`speaker_rows`; None: fewer
        than two describable recordings), as adapt_to_speaker takes them."""
        rows = self.speaker_rows(feature_set, paths, waveform, sample_rate)
        return moments(np.stack(rows)) if rows else None

    def _file_segments(self, path: str) -> Callable[..., Iterator]:
        d = self.config.data
        return lambda warnings=None: iter_segments(
            path, self.sample_rate, d.segment_s, d.min_tail_s, warnings=warnings, **self.cut)

    def _wave_segments(self, wave: np.ndarray) -> Callable[..., Iterator]:
        return lambda warnings=None: zip(*segment(wave, self.sample_rate, self.segment_s,
                                                   self.min_tail_s, **self.cut))

    def _statistics(self, sources: list, groups: list) -> dict:
        """{group: (mean, std, seconds)} (`dataset.group_statistics`) through this model's
        front end; one entry per group with readable audio."""
        if self._frontend is None:  # the training cache's front end, compiled once
            self._frontend = default_frontend(self.config)
        return group_statistics(sources, groups, self.config, self._frontend)

    def _training(self) -> dict:
        """The kept training statistics, or a ValueError saying why there are none."""
        if self.training_statistics is None:
            raise ValueError("--speaker-from training: this model keeps no training statistics "
                             "(a fold ensemble, or a model trained before they were kept); use "
                             "--speaker-from file|folder|call|column")
        return self.training_statistics

    def file_loader(self, path: str) -> Callable[[], np.ndarray]:
        """A function that reads `path` at the model's rate (`audio.load_audio`)."""
        return lambda: load_audio(path, self.sample_rate, min_samples=self.min_samples)

    def raw_functionals(self, load: Callable[[], np.ndarray],
                        feature_set: str | None = None) -> np.ndarray | None:
        """The openSMILE functionals (`feature_set`, default the model's own) of one input's
        whole audio (its silence at both ends cut as in training, `data.trim_db`); None when
        it cannot be read."""
        feature_set = feature_set or self.functionals_set
        if feature_set not in self._extractors:
            self._extractors[feature_set] = opensmile_extractor(feature_set)[0]
        try:
            wave = trim_silence(load(), self.sample_rate, self.cut["trim_db"], self.min_samples)[0]
            row = np.asarray(self._extractors[feature_set](wave, self.sample_rate),
                             np.float32).reshape(-1)
            return np.where(np.isfinite(row), row, 0.0).astype(np.float32)  # as training's cache
        except AudioError:
            return None  # its segments' read error names the problem

    def _functionals_rows(self, keys: list, groups: list, loaders: list) -> list:
        """Per input, the functionals row the model reads (None: the model reads none, or the
        input's audio could not be described). Standardised with the input's speaker group
        (adapt_to_speaker's statistics when set) under frontend.normalize='speaker'."""
        if not self.functionals_set:
            return [None] * len(keys)
        if self.spec.normalize != "speaker":
            raw = self.raw_by_input(keys, loaders, self.functionals_set)
            return [raw[k] for k in keys]
        training = None
        if TRAINING_GROUP in groups and self.speaker_norm is None:
            t = self._training()
            training = (t["functionals_mean"], t["functionals_std"])
        return self.standardised_functionals(keys, groups, loaders, self.functionals_set,
                                             training, self.speaker_functionals)[0]

    def raw_by_input(self, keys: list, loaders: list, feature_set: str) -> dict:
        """{key: raw functionals} of each distinct input (a repeated key is read once)."""
        raw = {}
        for k, load in zip(keys, loaders):
            if k not in raw:
                raw[k] = self.raw_functionals(load, feature_set)
        return raw

    def standardised_functionals(self, keys: list, groups: list, loaders: list,
                                 feature_set: str, training, adapted,
                                 lone=None, raw: dict | None = None) -> tuple[list, list]:
        """Per input, its `feature_set` functionals z-scored with its speaker group's moments
        (None: its audio could not be described), and whether its group had none of its own.
        A group's moments: `adapted` (adapt_to_speaker's) while the model is adapted to a
        speaker, `training` for TRAINING_GROUP, else those of the group's distinct inputs
        (`keys` name them; a repeated input counts once); a group of one recording has none,
        and takes `lone` (None: zeros, the functionals then say nothing). `raw`: the inputs'
        raw functionals when already read (`raw_by_input`)."""
        raw = self.raw_by_input(keys, loaders, feature_set) if raw is None else raw
        stats = {}
        for g in dict.fromkeys(groups):
            if self.speaker_norm is not None:  # adapt_to_speaker's, whatever the groups
                stats[g] = adapted
            elif g == TRAINING_GROUP:
                stats[g] = training
            else:
                members = [raw[k] for k in dict.fromkeys(k for k, h in zip(keys, groups) if h == g)
                           if raw[k] is not None]
                stats[g] = moments(np.stack(members)) if members else None
        lonely = [stats[g] is None for g in groups]
        rows = [None if raw[k] is None else
                group_zscore(raw[k][None], np.zeros(1), {0: lone if stats[g] is None else stats[g]})[0]
                for k, g in zip(keys, groups)]
        return rows, lonely

    def _speaker_groups(self, names: list[str], speakers, rules: tuple[str, ...],
                        noun: str) -> list[str]:
        """Each input's speaker group. `names` name the inputs (paths, or 'wave i'; a `noun` in
        errors); `speakers`: None (`default_speaker_from`), a rule of
        `rules` (adarl_jax.inference.speakers) or one label per input. A model standardised per
        recording (frontend.normalize='utterance') has each input its own group, as it was
        trained, whatever valid `speakers` it is given."""
        if isinstance(speakers, str) and speakers not in rules:
            raise ValueError(f"speakers={speakers!r}: expected None, "
                             f"{', '.join(map(repr, rules))} or one label per {noun}")
        if speakers is None or isinstance(speakers, str):
            groups = speaker_groups(names, speakers or self.default_speaker_from)
        else:
            groups = [str(g) for g in speakers]
            if len(groups) != len(names):
                raise ValueError(f"speakers: {len(groups)} labels for {len(names)} {noun}s")
        return speaker_groups(names, "file") if self.per_recording else groups

    def _speaker_fields(self, keys: list, groups: list, sources: list) -> list[dict]:
        """Per input: its group's normalisation (`norm`: (mean, std) float32 or None), and the
        rows' `speaker`, `speaker_s` and warning. `keys` name distinct inputs (a repeated input
        shares the first one's source and counts once in its group's statistics)."""
        if not self.uses_speaker_norm:
            return [{"norm": None, "speaker": None, "speaker_s": None, "warning": None}
                    for _ in keys]
        if self.speaker_norm is not None:
            stats = {None: self.speaker_norm}
            groups = [None] * len(keys)
        else:
            first = dict.fromkeys(k for k, g in zip(keys, groups) if g != TRAINING_GROUP)
            index = {k: i for i, k in reversed(list(enumerate(keys)))}
            stats = self._statistics([sources[index[k]] for k in first],
                                     [groups[index[k]] for k in first])
            if TRAINING_GROUP in groups:
                t = self._training()
                stats[TRAINING_GROUP] = (t["mean"], t["std"],
                                         float(t["frames"]) * self.spec.hop / self.sample_rate)
        out = []
        for g in groups:
            if g not in stats:  # no readable audio in the group: its rows carry the read error
                out.append({"norm": None, "speaker": g, "speaker_s": 0.0, "warning": None})
                continue
            mean, std, seconds = stats[g]
            out.append({"norm": (np.asarray(mean, np.float32), np.asarray(std, np.float32)),
                        "speaker": "adapt_to_speaker" if g is None else str(g),
                        "speaker_s": round(float(seconds), 3),
                        # a model standardised per recording was trained on one file's statistics
                        "warning": None if self.per_recording else speaker_warning(seconds)})
        return out

    def probs_of_spectrograms(self, x, functionals=None) -> np.ndarray:
        """Probabilities of ready-made spectrogram segments (any batch size; not bucketed);
        `functionals` (n, d), standardised, for a model that reads them."""
        if self.functionals_set and functionals is None:
            raise ValueError(f"this model reads {self.functionals_set} functionals: pass them")
        u = None if functionals is None else jnp.asarray(functionals, jnp.float32)
        return np.asarray(self._spectrogram_probs(self.variables, jnp.asarray(x, jnp.float32), u))

    # -- streaming segments through the buckets -------------------------------------------

    def _stream(self, sources: Iterable[tuple[str | None, Callable[[list], Iterator], tuple | None]],
             on_done: Callable[[int, InputJob], None]) -> dict:
        """Feeds every source's segments through the buckets; calls on_done(i, job) in order.
        A source is (path or None, its segments given a warnings list, its speaker's (mean,
        std) or None, its functionals row or None)."""
        top = self.buckets[-1]
        waves = np.zeros((top, self.segment_length), np.float32)
        lengths = np.full((top,), self.segment_length, np.int32)
        shape = (self.spec.output_shape[0], 1, self.spec.output_shape[2])
        means = np.zeros((top, *shape), np.float32) if self.uses_speaker_norm else None
        stds = np.ones((top, *shape), np.float32) if self.uses_speaker_norm else None
        reads = bool(self.functionals_set)  # the model reads each input's functionals
        funcs = None
        owners: list[tuple[InputJob, int]] = []
        jobs: list[InputJob] = []
        next_out = 0
        stats = {"segments": 0, "batches": 0, "padded": 0}

        def emit():
            nonlocal next_out
            while next_out < len(jobs) and jobs[next_out].done:
                on_done(next_out, jobs[next_out])
                jobs[next_out] = None  # finished: free it
                next_out += 1

        def run_batch(size: int):
            n = min(size, len(owners))
            # Padding rows: silence of full length (the front end maps it to zeros).
            waves[n:size] = 0.0
            lengths[n:size] = self.segment_length
            norm = None if means is None else (means[:size], stds[:size])
            if funcs is not None:
                funcs[n:size] = 0.0
            probs, feats = jax.device_get(self._infer_outputs(
                self.variables, waves[:size], lengths[:size], norm,
                None if funcs is None else funcs[:size]))
            for i, (job, k) in enumerate(owners[:n]):
                job.probs[k] = probs[i]
                if feats is not None:
                    job.feats[k] = feats[i]
            del owners[:n]
            waves[:len(owners)] = waves[n:n + len(owners)]
            lengths[:len(owners)] = lengths[n:n + len(owners)]
            if means is not None:
                means[:len(owners)] = means[n:n + len(owners)]
                stds[:len(owners)] = stds[n:n + len(owners)]
            if funcs is not None:
                funcs[:len(owners)] = funcs[n:n + len(owners)]
            stats["batches"] += 1
            stats["padded"] += size - n
            emit()

        for path, open_segments, norm, row in sources:
            job = InputJob(path)
            jobs.append(job)
            if row is not None and funcs is None:
                funcs = np.zeros((top, len(row)), np.float32)
            undescribed = reads and row is None
            unnormalised = (means is not None and norm is None) or undescribed
            for wave, length, start in read_segments(job, open_segments):
                if unnormalised:  # read through for the file's own error, predicted never
                    continue
                waves[len(owners)] = wave
                lengths[len(owners)] = length
                if means is not None:
                    means[len(owners)], stds[len(owners)] = norm
                if funcs is not None:
                    funcs[len(owners)] = row
                owners.append((job, len(job.starts)))
                job.starts.append(float(start))
                job.lengths.append(int(length))
                stats["segments"] += 1
                if len(owners) == top:
                    run_batch(top)
            if unnormalised and job.error is None:
                job.error = ("openSMILE could not describe its audio" if undescribed else
                             "no speaker statistics: none of its group's audio could be read")
            if job.error is None and not job.starts:
                job.error = "no segments"
            if job.duration_s is None and path is not None:
                job.duration_s = file_info(path)[0]
            job.read_done = True
            emit()
        for size in plan_batches(len(owners), self.buckets):
            run_batch(size)
        emit()
        return stats

    def _short_warning(self, job: InputJob) -> str | None:
        """A clip shorter than the minimum segment, measured on the audio the model saw: the
        span its segments cover (under the silence trim, the speech), else the file's length."""
        seconds = job.duration_s
        if job.starts:
            seconds = (max(s + n / self.sample_rate for s, n in zip(job.starts, job.lengths))
                       - min(job.starts))
        return short_clip_warning(seconds, self.min_tail_s, self.segment_s,
                                  trimmed=self.cut["trim_db"] > 0)

    def _record(self, job: InputJob, timeline: bool, embeddings: bool = False,
                speaker: dict | None = None, warnings: Sequence[str | None] = ()) -> dict:
        """The public per-input dict. Non-finite probabilities (a diverged model) are an
        error, never a result. `speaker`: the input's `_speaker_fields`; `warnings`: lines
        for the warning column beside the audio's own. With embeddings: 'embedding' (D,) and,
        with timeline, 'segment_embeddings' (segments, D), float32 (None for a failed input)."""
        speaker = speaker or {}
        lines = [*job.warnings, *warnings, speaker.get("warning")]
        rec = {"path": job.path, "emotion": None, "probs": None,
               "duration_s": None if job.duration_s is None else round(job.duration_s, 3),
               "segments": len(job.starts), "speaker": speaker.get("speaker"),
               "speaker_s": speaker.get("speaker_s"), "error": job.error,
               "warning": "; ".join(w for w in lines if w) or None}
        seg_probs = None
        if job.error is None:
            seg_probs = np.stack([job.probs[k] for k in range(len(job.starts))])
            if not np.all(np.isfinite(seg_probs)):
                rec["error"] = ("the model gave non-finite (NaN/inf) probabilities: its "
                                "checkpoint is unusable (did training diverge?)")
        if rec["error"] is None:
            mean = seg_probs.mean(axis=0)
            rec["emotion"] = self.classes[int(np.argmax(mean))]
            rec["probs"] = {c: round(float(p), 6) for c, p in zip(self.classes, mean)}
            if timeline:
                rec["timeline"] = [
                    {"start_s": round(s, 3), "duration_s": round(n / self.sample_rate, 3),
                     "emotion": self.classes[int(np.argmax(p))],
                     "probs": {c: round(float(x), 6) for c, x in zip(self.classes, p)}}
                    for s, n, p in zip(job.starts, job.lengths, seg_probs)]
        elif timeline:
            rec["timeline"] = []
        if embeddings:
            rec.update(self._embedding_fields(job, rec["error"] is None, timeline))
        return rec

    def _embedding_fields(self, job: InputJob, ok: bool, timeline: bool) -> dict:
        seg = np.stack([job.feats[k] for k in range(len(job.starts))]) if ok else None
        fields = {"embedding": None if seg is None else seg.mean(axis=0, dtype=np.float32)}
        if timeline:
            fields["segment_embeddings"] = seg
        return fields

    def _check_embeddable(self) -> None:
        if self.n_models > 1:
            raise ValueError(
                f"embeddings of an ensemble of {self.n_models} models are not defined: each "
                "model's deep features live in its own space, so their mean means nothing; "
                "choose one fold (--fold K) of a workdir, or a model folder of one model")

    @property
    def embedding_dim(self) -> int:
        """Size of the deep feature (`embed`'s output)."""
        return int(self.config.model.hidden)

    # -- public API ------------------------------------------------------------------------

    def predict(self, waveform, sample_rate: int, timeline: bool = False,
                channels_first: bool = False) -> dict:
        """Probabilities of one recording: waveform (samples,) or (samples, channels) (with
        channels_first, (channels, samples)), any rate.

          p = Predictor.from_pretrained("emodb")
          p.predict(wave, 16000)
          # {'emotion': 'neutral', 'probs': {'anger': 0.02, ...}, 'duration_s': 2.4,
          #  'segments': 1, 'speaker': 'wave 0', 'speaker_s': 2.4, 'error': None, 'warning': ...}

        Channels are averaged and the rate converted as for files (`audio.load_audio`); a
        speaker-normalised model takes the recording's own statistics (or adapt_to_speaker's).
        Raises ValueError for an empty, too short or non-finite waveform (or a model that gives
        non-finite probabilities); 'warning' says what is suspect (silent, short, band-limited,
        too little speaker audio).
        """
        return self.predict_batch([waveform], sample_rate, timeline=timeline,
                                  channels_first=channels_first)[0]

    def predict_batch(self, waveforms, sample_rate: int, speakers=None, timeline: bool = False,
                      channels_first: bool = False) -> list[dict]:
        """Probabilities of many in-memory recordings, their segments packed into the fixed
        batch buckets: one dict per recording, in order, as `predict` returns.

          p.predict_batch([w1, w2, w3], 16000)                    # each its own speaker
          p.predict_batch([w1, w2, w3], 16000, speakers=["ann", "ann", "bob"])
          p.predict_batch(np.zeros((4, 32000)), 16000)            # a 2-D array: 4 recordings

        waveforms: a sequence of arrays, each as `predict` takes, or one (n, samples) array.
        speakers (a speaker-normalised model only changes with it): None, each recording its
        own group (batch-invariant: a recording's output does not depend on the others); 'call',
        all of them one speaker; or one label per recording, equal labels one speaker. Raises
        ValueError naming the recording (waveforms[i]) for input it cannot read.
        """
        waves = [np.asarray(w) for w in waveforms]
        groups = self._speaker_groups([f"wave {i}" for i in range(len(waves))], speakers,
                                      rules=("call", "training"), noun="recording")
        prepared = []
        for i, w in enumerate(waves):
            try:
                prepared.append(prepare_wave(w, sample_rate, self.sample_rate, self.min_samples,
                                             channels_first=channels_first))
            except ValueError as e:
                raise ValueError(f"waveforms[{i}]: {e}") from None
        records = self._predict_waves(prepared, sample_rate, groups, timeline, embeddings=False)
        for i, rec in enumerate(records):
            if rec["error"]:
                raise ValueError(f"waveforms[{i}]: {rec['error']}")
            del rec["path"]
        return records

    def embed(self, waveform, sample_rate: int, timeline: bool = False,
              channels_first: bool = False):
        """The deep feature (D,) float32 of one recording: the mean over its segments, as its
        probabilities are. With timeline: (that mean, (segments, D) per-segment features).

        Input and errors as `predict`; a Predictor of several fold models raises ValueError
        (their features live in different spaces)."""
        self._check_embeddable()
        wave = prepare_wave(waveform, sample_rate, self.sample_rate, self.min_samples,
                            channels_first=channels_first)
        (rec,) = self._predict_waves([wave], sample_rate, ["wave 0"], timeline, embeddings=True)
        if rec["error"]:
            raise ValueError(rec["error"])
        return (rec["embedding"], rec["segment_embeddings"]) if timeline else rec["embedding"]

    def _predict_waves(self, waves: list, rate: int, groups: list, timeline: bool,
                       embeddings: bool) -> list[dict]:
        """Records of prepared waveforms (at the model's rate; `rate` was the caller's)."""
        sources = [self._wave_segments(w) for w in waves]
        fields = self._speaker_fields(list(range(len(waves))), groups, sources)
        rows = self._functionals_rows(list(range(len(waves))), groups,
                                      [lambda w=w: w for w in waves])
        out: list[dict] = []

        def done(i, job):
            job.duration_s = len(waves[i]) / self.sample_rate
            w = waves[i]
            job.warnings.append(level_warning(float(np.max(np.abs(w))), float(np.dot(w, w)), w.size))
            checks = (self._short_warning(job), band_warning(rate, self.spec))
            out.append(self._record(job, timeline, embeddings, fields[i], checks))

        self._stream([(None, src, f["norm"], r) for src, f, r in zip(sources, fields, rows)], done)
        return out

    def predict_files(self, paths: Iterable, timeline: bool = False, progress: bool = False,
                      stats: dict | None = None, embeddings: bool = False,
                      speakers=None) -> list[dict]:
        """One dict per path, in order: path, emotion, probs {class: p}, duration_s, segments,
        speaker and speaker_s (the group whose statistics standardised it and the seconds of
        audio they came from; None for a model without speaker statistics), error (None when
        fine), warning (None, or why the result is suspect: silent, truncated, short,
        band-limited, repeated, too little speaker audio) and, with timeline, one entry per
        segment. A file that cannot be read gets its error and no probabilities; the others
        are predicted. With embeddings, the fields of `_record` (a single fold model only).

          p.predict_files(["a.wav", "b.wav"])                     # default_speaker_from
          p.predict_files(paths, speakers="folder")               # a folder is a speaker
          p.predict_files(paths, speakers=["ann", "ann", "bob"])  # who speaks, per path

        speakers (`adarl_jax.inference.speakers`): None (`default_speaker_from`), a rule ('file', 'training',
        'folder', 'call') or one label per path. A path given more than once is predicted
        once and gets a row each time, with a warning; its audio counts once in its group.
        """
        from tqdm.auto import tqdm

        if embeddings:
            self._check_embeddable()
        paths = [os.fspath(p) for p in paths]
        groups = self._speaker_groups(paths, speakers, rules=SPEAKER_FROM, noun="path")
        keys = [os.path.abspath(p) for p in paths]
        times = {k: keys.count(k) for k in set(keys)}
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        for k, g in zip(keys, groups):
            if g != groups[first[k]]:
                raise ValueError(f"{paths[first[k]]} is given two speakers, {groups[first[k]]!r} "
                                 f"and {g!r}")
        unique = sorted(first.values())  # each distinct input once, in order
        sources = [self._file_segments(p) for p in paths]
        fields = self._speaker_fields(keys, groups, sources)
        rows = self._functionals_rows(keys, groups, [self.file_loader(p) for p in paths])
        results: list[dict] = [None] * len(paths)
        failed = warned = 0
        t0 = time.perf_counter()
        with tqdm(total=len(paths), unit="file", disable=not progress, desc="predict",
                  file=sys.stderr) as bar:
            def done(j, job):
                nonlocal failed, warned
                i = unique[j]
                _, rate = file_info(paths[i])
                checks = (self._short_warning(job), band_warning(rate, self.spec),
                          repeat_warning(times[keys[i]]))
                for k in (i, *(k for k in range(i + 1, len(paths)) if keys[k] == keys[i])):
                    results[k] = self._record(job, timeline, embeddings, fields[k], checks)
                    results[k]["path"] = paths[k]
                    failed += results[k]["error"] is not None
                    warned += results[k]["warning"] is not None
                    bar.update(1)
                if failed:
                    bar.set_postfix(failed=failed)

            run_stats = self._stream([(paths[i], sources[i], fields[i]["norm"], rows[i])
                                      for i in unique], done)
        if stats is not None:
            seconds = time.perf_counter() - t0
            stats.update(run_stats, files=len(paths), failed=failed, warned=warned, seconds=seconds,
                         compilations=self.compilations)
        return results
