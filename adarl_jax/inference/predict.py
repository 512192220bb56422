"""Batch inference with a trained fold: waveforms and audio files -> class probabilities.

An utterance's probabilities are the mean of its 3 s segments' (Sec. 3.1, as in training),
and so is its embedding (the model's deep feature). Segments from many files are packed into
batches of a few fixed sizes (`buckets`, padding the last), and the front end and the model
run in one jitted function, so after at most one compilation per bucket no file length causes
another. Files are streamed block by block (`audio.iter_segments`).

  p = Predictor.from_checkpoint("runs/emodb", variant="adarl", fold=3)
  p = Predictor.load("runs/emodb/final/adarl")   # a model folder (adarl_jax.experiments.final_model)
  p.predict(wave, 44100)           # {'emotion': 'anger', 'probs': {...}, 'segments': 2, ...}
  p.embed(wave, 44100)             # (hidden,) float32: the mean deep feature of its segments
  p.predict_files(["a.wav", ...])  # one such dict per file; 'error' says why a file failed,
                                   # 'warning' what is suspect (silent, truncated)

Which checkpoint serves a fold: `fold_models`; input lists and output files: `predict_io`;
the model over spectrogram segments: `inference`; waveform preparation: `audio`.
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

from adarl_jax.config import input_shape
from adarl_jax.data.dataset import speaker_statistics, speaker_statistics_of_files
from adarl_jax.data.feature_cache import min_samples_for, valid_frame_count
from adarl_jax.model import build_model
from adarl_jax.data.audio import iter_segments, level_warning, prepare_wave, segment
from adarl_jax.inference.fold_models import CheckpointError, FoldRef, find_fold, restore_variables
from adarl_jax.data.frontend import FrontendSpec, spectrogram, valid_frames
from adarl_jax.train.forward import segment_outputs
from adarl_jax.inference.model_folder import ModelFolderError, read_model_folder
from adarl_jax.inference.predict_io import (AUDIO_EXTENSIONS, InputJob, expand_inputs, file_duration,
                                  read_segments, write_embeddings, write_predictions)

__all__ = ["AUDIO_EXTENSIONS", "CheckpointError", "DEFAULT_BUCKETS", "FoldRef", "ModelFolderError",
           "Predictor", "expand_inputs", "find_fold", "plan_batches", "restore_variables",
           "write_embeddings", "write_predictions"]

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


class Predictor:
    """A trained model with its front end, jit-compiled once per bucket size."""

    def __init__(self, config, variables, buckets: Sequence[int] = DEFAULT_BUCKETS,
                 source: str = "", n_models: int = 1):
        """`variables` {'params', 'batch_stats'}; with n_models > 1 every leaf has a leading
        axis of that size (an ensemble, e.g. all LOSO folds) and probabilities are averaged."""
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
        self.segment_length = int(round(self.segment_s * self.sample_rate))
        self.min_samples = min_samples_for(config)
        self.variables = jax.device_put(variables)
        self.compilations = 0  # traces of the jitted function: one per bucket size seen
        # frontend.normalize='speaker': (mean, std) of the speaker being predicted, set by
        # adapt_to_speaker (else predict_files takes its inputs, predict its waveform)
        self.speaker_norm = None
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
        return cls(config, variables, buckets, source, n_models=len(refs))

    @classmethod
    def load(cls, folder, buckets: Sequence[int] = DEFAULT_BUCKETS) -> "Predictor":
        """The model of a model folder (adarl_jax.model_folder: `train_final` writes one).
        Raises ModelFolderError (a ValueError) naming the file and what is wrong with it."""
        config, variables, _ = read_model_folder(folder)
        return cls(config, variables, buckets, f"model folder {folder}")

    # -- the jitted computation ------------------------------------------------------------

    def spectrogram_probs(self, variables, x):
        """(B, F, T, 3) spectrograms -> (B, K) class probabilities (what `export` saves)."""
        return self._spectrogram_outputs(variables, x)[0]

    def _waves_to_probs(self, variables, waves, lengths, norm=None):
        return self._waves_to_outputs(variables, waves, lengths, norm)[0]

    def _waves_to_outputs(self, variables, waves, lengths, norm=None):
        self.compilations += 1  # Python runs here only while jax traces a new batch shape
        x = spectrogram(waves, lengths, self.spec)
        if norm is not None:  # the speaker's standardisation, on valid frames only
            valid = valid_frames(lengths, self.spec.hop, self.spec.n_frames)[:, None, :, None]
            x = jnp.where(valid, (x - norm[0]) / norm[1], 0.0)
        return self._spectrogram_outputs(variables, x)

    @property
    def uses_speaker_norm(self) -> bool:
        return self.spec.normalize == "speaker"

    def adapt_to_speaker(self, paths=None, waveform=None, sample_rate: int | None = None) -> None:
        """frontend.normalize='speaker': take the statistics of one speaker's audio (files, or
        one waveform) for the predictions that follow. Transductive, as in training: the
        speaker's own unlabelled audio, ideally more than the utterances being predicted."""
        if paths is not None:
            mean, std = speaker_statistics_of_files([os.fspath(p) for p in paths], self.config)
        else:
            wave = prepare_wave(waveform, sample_rate, self.sample_rate, self.min_samples)
            segs, lengths, _ = segment(wave, self.sample_rate, self.segment_s, self.min_tail_s)
            raw = np.asarray(jax.jit(lambda w, n: spectrogram(w, n, self.spec))(segs, lengths))
            frames = np.array([valid_frame_count(self.config, n) for n in lengths])
            mean, std = speaker_statistics(raw, frames, np.zeros(len(raw), np.int64))[0]
        self.speaker_norm = (jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32))

    def probs_of_spectrograms(self, x) -> np.ndarray:
        """Probabilities of ready-made spectrogram segments (any batch size; not bucketed)."""
        return np.asarray(self._spectrogram_probs(self.variables, jnp.asarray(x, jnp.float32)))

    # -- streaming segments through the buckets -------------------------------------------

    def _stream(self, sources: Iterable[tuple[str | None, Callable[[list], Iterator]]],
             on_done: Callable[[int, InputJob], None]) -> dict:
        """Feeds every source's segments through the buckets; calls on_done(i, job) in order."""
        top = self.buckets[-1]
        waves = np.zeros((top, self.segment_length), np.float32)
        lengths = np.full((top,), self.segment_length, np.int32)
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
            probs, feats = jax.device_get(self._infer_outputs(self.variables, waves[:size],
                                                              lengths[:size], self.speaker_norm))
            for i, (job, k) in enumerate(owners[:n]):
                job.probs[k] = probs[i]
                if feats is not None:
                    job.feats[k] = feats[i]
            del owners[:n]
            waves[:len(owners)] = waves[n:n + len(owners)]
            lengths[:len(owners)] = lengths[n:n + len(owners)]
            stats["batches"] += 1
            stats["padded"] += size - n
            emit()

        for path, open_segments in sources:
            job = InputJob(path)
            jobs.append(job)
            for wave, length, start in read_segments(job, open_segments):
                waves[len(owners)] = wave
                lengths[len(owners)] = length
                owners.append((job, len(job.starts)))
                job.starts.append(float(start))
                job.lengths.append(int(length))
                stats["segments"] += 1
                if len(owners) == top:
                    run_batch(top)
            if job.error is None and not job.starts:
                job.error = "no segments"
            if job.duration_s is None and path is not None:
                job.duration_s = file_duration(path)
            job.read_done = True
            emit()
        for size in plan_batches(len(owners), self.buckets):
            run_batch(size)
        emit()
        return stats

    def _record(self, job: InputJob, timeline: bool, embeddings: bool = False) -> dict:
        """The public per-input dict. Non-finite probabilities (a diverged model) are an
        error, never a result. With embeddings: 'embedding' (D,) and, with timeline,
        'segment_embeddings' (segments, D), float32 (None for a failed input)."""
        rec = {"path": job.path, "emotion": None, "probs": None,
               "duration_s": None if job.duration_s is None else round(job.duration_s, 3),
               "segments": len(job.starts), "error": job.error,
               "warning": "; ".join(job.warnings) or None}
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
                f"embeddings of an ensemble of {self.n_models} fold models are not defined: "
                "each fold model's deep features live in its own space, so their mean means "
                "nothing; choose one fold (--fold K)")

    @property
    def embedding_dim(self) -> int:
        """Size of the deep feature (`embed`'s output)."""
        x = jax.ShapeDtypeStruct((1, *input_shape(self.config)), jnp.float32)
        out = jax.eval_shape(lambda v, x: self.model.apply(v, x, train=False), self.variables, x)
        return int(out["deep_feature"].shape[-1])

    # -- public API ------------------------------------------------------------------------

    def predict(self, waveform, sample_rate: int, timeline: bool = False) -> dict:
        """Probabilities of one recording: waveform (samples,) or (samples, channels), any rate.

        Channels are averaged and the rate converted as for files (`audio.load_audio`).
        Raises ValueError for an empty, too short or non-finite waveform (or a model that gives
        non-finite probabilities); 'warning' says when the recording is (near-)silent.
        """
        wave = prepare_wave(waveform, sample_rate, self.sample_rate, self.min_samples)
        rec = self._one_wave(wave, timeline, embeddings=False)
        rec["duration_s"] = round(len(wave) / self.sample_rate, 3)
        rec["warning"] = level_warning(float(np.max(np.abs(wave))), float(np.dot(wave, wave)),
                                       wave.size)
        del rec["path"]
        return rec

    def embed(self, waveform, sample_rate: int, timeline: bool = False):
        """The deep feature (D,) float32 of one recording: the mean over its segments, as its
        probabilities are. With timeline: (that mean, (segments, D) per-segment features).

        Input and errors as `predict`; a Predictor of several fold models raises ValueError
        (their features live in different spaces)."""
        self._check_embeddable()
        wave = prepare_wave(waveform, sample_rate, self.sample_rate, self.min_samples)
        rec = self._one_wave(wave, timeline, embeddings=True)
        return (rec["embedding"], rec["segment_embeddings"]) if timeline else rec["embedding"]

    def _one_wave(self, wave: np.ndarray, timeline: bool, embeddings: bool) -> dict:
        """The record of one prepared waveform; its error, if any, raised as ValueError."""
        saved = self.speaker_norm
        if self.uses_speaker_norm and saved is None:  # the recording is its own speaker
            self.adapt_to_speaker(waveform=wave, sample_rate=self.sample_rate)
        segs, lengths, starts = segment(wave, self.sample_rate, self.segment_s, self.min_tail_s)
        out: list[dict] = []
        job_source = [(None, lambda warnings: zip(segs, lengths, starts))]
        try:
            self._stream(job_source,
                      lambda i, job: out.append(self._record(job, timeline, embeddings)))
        finally:
            self.speaker_norm = saved
        if out[0]["error"]:
            raise ValueError(out[0]["error"])
        return out[0]

    def predict_files(self, paths: Iterable, timeline: bool = False, progress: bool = False,
                      stats: dict | None = None, embeddings: bool = False) -> list[dict]:
        """One dict per file, in order: path, emotion, probs {class: p}, duration_s, segments,
        error (None when fine), warning (None, or why the result is suspect: a silent or
        truncated file) and, with timeline, one entry per segment. A file that cannot be read
        gets its error and no probabilities; the others are predicted. With embeddings, the
        fields of `_record` (a single fold model only)."""
        from tqdm.auto import tqdm

        if embeddings:
            self._check_embeddable()
        paths = [os.fspath(p) for p in paths]
        saved = self.speaker_norm
        if self.uses_speaker_norm and saved is None:
            log.info("frontend.normalize='speaker': statistics from the %d input files, taken "
                     "as one speaker (Predictor.adapt_to_speaker sets them otherwise)", len(paths))
            self.adapt_to_speaker(paths)
        d = self.config.data
        sources = [(p, lambda warnings, p=p: iter_segments(
            p, self.sample_rate, d.segment_s, d.min_tail_s, min_samples=self.min_samples,
            warnings=warnings)) for p in paths]
        results: list[dict] = [None] * len(paths)
        failed = warned = 0
        t0 = time.perf_counter()
        with tqdm(total=len(paths), unit="file", disable=not progress, desc="predict",
                  file=sys.stderr) as bar:
            def done(i, job):
                nonlocal failed, warned
                results[i] = self._record(job, timeline, embeddings)
                failed += results[i]["error"] is not None
                warned += results[i]["warning"] is not None
                bar.update(1)
                if failed:
                    bar.set_postfix(failed=failed)

            try:
                run_stats = self._stream(sources, done)
            finally:
                self.speaker_norm = saved
        if stats is not None:
            seconds = time.perf_counter() - t0
            stats.update(run_stats, files=len(paths), failed=failed, warned=warned, seconds=seconds,
                         compilations=self.compilations)
        return results
