"""Batch inference with a trained fold: files, folders and lists of paths -> class probabilities.

An utterance's probabilities are the mean of its 3 s segments' (Sec. 3.1, as in training).
Segments from many files are packed into batches of a few fixed sizes (`buckets`, padding the
last), and the front end (`frontend.spectrogram`) and the model run in one jitted function, so
after at most one compilation per bucket no file length causes another. Files are streamed
block by block (`audio.iter_segments`): a 10-minute recording never sits in memory whole.

  p = Predictor.from_checkpoint("runs/emodb", variant="adarl", fold=3)
  p.predict(wave, 44100)           # {'emotion': 'anger', 'probs': {...}, 'segments': 2, ...}
  p.predict_files(["a.wav", ...])  # one such dict per file; 'error' says why a file failed,
                                   # 'warning' what is suspect (silent, truncated)

A workdir W holds W/config.json and W/<variant>/fold_<kk>_<speaker>/{checkpoints,best,
result.json}; `from_checkpoint` also accepts a fold folder. The checkpoint used is the one
the fold's result reports (the last epoch, or the best validation epoch under
train.selection='val').
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from adarl_jax.audio import AudioError, iter_segments, level_warning, segment
from adarl_jax.config import config_from_json, input_shape
from adarl_jax.files import write_text_atomic
from adarl_jax.frontend import FrontendSpec, spectrogram, valid_frames

__all__ = [
    "AUDIO_EXTENSIONS",
    "CheckpointError",
    "DEFAULT_BUCKETS",
    "FoldRef",
    "Predictor",
    "expand_inputs",
    "find_fold",
    "plan_batches",
    "write_predictions",
]

log = logging.getLogger(__name__)

DEFAULT_BUCKETS = (1, 8, 32)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc",
                    ".au", ".snd", ".w64", ".rf64", ".caf")
LIST_EXTENSIONS = (".txt", ".lst", ".list")


class CheckpointError(ValueError):
    """A checkpoint that cannot serve this config (wrong shapes, variant, layout)."""


# ---------------------------------------------------------------------------------------------
# Finding the checkpoint


@dataclasses.dataclass(frozen=True)
class FoldRef:
    """One trained fold and the checkpoint step to use."""

    workdir: Path
    variant: str
    fold: int
    speaker: str
    fold_dir: Path
    checkpoint_dir: Path
    step: int
    finished: bool

    def describe(self) -> str:
        state = "" if self.finished else ", unfinished"
        return f"{self.variant} fold {self.fold} ({self.speaker}, epoch {self.step}{state})"


_FOLD_DIR = re.compile(r"^fold_(\d+)_(.+)$")


def _fold_dirs(variant_dir: Path) -> dict[int, Path]:
    out = {}
    for d in sorted(variant_dir.glob("fold_*")):
        m = _FOLD_DIR.match(d.name)
        # baseline folds (openSMILE + SVM) hold no network checkpoint: not servable here
        if m and d.is_dir() and ((d / "checkpoints").is_dir() or (d / "best").is_dir()):
            out[int(m.group(1))] = d
    return out


def _workdir_of(path: Path) -> tuple[Path, str | None, int | None]:
    """(workdir, variant, fold) named by a workdir, a fold folder or its checkpoints folder."""
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path}: no such file or folder")
    if (path / "config.json").is_file() and not _FOLD_DIR.match(path.name):
        return path, None, None
    if path.name in ("checkpoints", "best"):
        path = path.parent
    m = _FOLD_DIR.match(path.name)
    if m and (path.parent.parent / "config.json").is_file():
        return path.parent.parent, path.parent.name, int(m.group(1))
    if (path.parent / "config.json").is_file() and _fold_dirs(path):  # W/<variant>
        return path.parent, path.name, None
    raise FileNotFoundError(
        f"checkpoint {path}: not a trained workdir (no config.json), variant folder or fold "
        f"folder (<workdir>/<variant>/fold_<k>_<speaker>); train one with `adarl-jax train "
        f"--workdir W`")


def _latest_step(directory: Path) -> int | None:
    if not directory.is_dir():
        return None
    from adarl_jax.checkpoint import FoldCheckpointer

    return FoldCheckpointer(directory).latest_step()


def _fold_ref(workdir: Path, variant: str, fold: int, fold_dir: Path) -> FoldRef:
    speaker = _FOLD_DIR.match(fold_dir.name).group(2)
    result_path = fold_dir / "result.json"
    finished = result_path.is_file()
    result = json.loads(result_path.read_text()) if finished else {}
    ckpt_dir = fold_dir / "checkpoints"
    step = None
    if result.get("selection") == "val" and (fold_dir / "best").is_dir():
        ckpt_dir = fold_dir / "best"
        step = result.get("selected_epoch")
    if step is None or step < 0:
        step = _latest_step(ckpt_dir)
    if step is None:
        raise FileNotFoundError(
            f"{variant} fold {fold} ({speaker}): no checkpoint in {ckpt_dir} "
            f"(training stopped before its first epoch ended?)")
    if not finished:
        log.warning("%s fold %d (%s) has not finished training (no result.json): using its "
                    "latest checkpoint, epoch %d", variant, fold, speaker, step)
    return FoldRef(workdir, variant, fold, speaker, fold_dir, ckpt_dir, int(step), finished)


def find_fold(path, variant: str | None = None, fold: int | str | None = None) -> list[FoldRef]:
    """The fold(s) a checkpoint argument names. `fold='all'` gives every trained fold.

    Raises FileNotFoundError naming what is missing (workdir, variant, fold, checkpoint) and
    what is there instead.
    """
    workdir, path_variant, path_fold = _workdir_of(Path(path))
    variant = variant or path_variant
    fold = path_fold if fold is None else fold
    trained = {d.name: _fold_dirs(d) for d in sorted(workdir.iterdir()) if d.is_dir()}
    trained = {v: f for v, f in trained.items() if f}
    if not trained:
        raise FileNotFoundError(f"{workdir}: no trained folds (<variant>/fold_<k>_<speaker>/)")
    if variant is None:
        config_variant = config_from_json((workdir / "config.json").read_text()).model.variant
        if len(trained) == 1:
            variant = next(iter(trained))
        elif config_variant in trained:
            variant = config_variant
        else:
            raise FileNotFoundError(f"{workdir} holds several variants {sorted(trained)}: "
                                    "choose one with --variant")
    if variant not in trained:
        raise FileNotFoundError(f"{workdir}: no trained folds of variant {variant!r}; "
                                f"trained variants: {sorted(trained)}")
    folds = trained[variant]
    listing = ", ".join(f"{k} ({_FOLD_DIR.match(d.name).group(2)})" for k, d in folds.items())
    if fold is None:
        if len(folds) != 1:
            raise FileNotFoundError(
                f"{workdir}/{variant} holds {len(folds)} folds [{listing}]: choose one with "
                "--fold K, or --fold all for the mean of their probabilities")
        fold = next(iter(folds))
    if fold == "all":
        return [_fold_ref(workdir, variant, k, d) for k, d in folds.items()]
    fold = int(fold)
    if fold not in folds:
        raise FileNotFoundError(f"{workdir}/{variant}: no fold {fold}; trained folds: [{listing}]")
    return [_fold_ref(workdir, variant, fold, folds[fold])]


def _run_config(ref: FoldRef):
    # A fold's own config.json (if the trainer wrote one) wins over the workdir's, which a
    # later run with other settings may have overwritten.
    path = ref.fold_dir / "config.json"
    if not path.is_file():
        path = ref.workdir / "config.json"
    config = config_from_json(path.read_text())
    config.model.variant = ref.variant
    return config, path


def _abstract_state(config):
    """The TrainState's shapes and dtypes, as train_fold builds it, without computing anything."""
    from adarl_jax.model import build_model
    from adarl_jax.optim import make_optimizer
    from adarl_jax.train import create_train_state

    model = build_model(config)
    x = jnp.zeros((1, *input_shape(config)), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0, impl="rbg"), x, train=False))
    tx = make_optimizer(config, 1)
    return jax.eval_shape(lambda v: create_train_state(v, tx, len(config.data.classes)), variables)


def _stored_shapes(ckpt_dir: Path, step: int) -> dict[str, tuple] | None:
    """{'params/...': shape} of a saved state, read from orbax's metadata (None if unreadable).

    TODO(lead): belongs in checkpoint.py (FoldCheckpointer.stored_shapes) with the rest of orbax.
    """
    try:
        import orbax.checkpoint as ocp
        from etils import epath

        meta = ocp.StandardCheckpointHandler().metadata(epath.Path(ckpt_dir / str(step) / "state"))
        leaves = jax.tree_util.tree_flatten_with_path(meta.tree)[0]
        return {_key(p): tuple(v.shape) for p, v in leaves if hasattr(v, "shape")}
    except Exception as e:  # diagnosis only: the restore below reports the real failure
        log.debug("could not read checkpoint metadata of %s: %s", ckpt_dir, e)
        return None


def _key(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _check_shapes(ref: FoldRef, config, config_path: Path, abstract) -> None:
    stored = _stored_shapes(ref.checkpoint_dir, ref.step)
    if stored is None:
        return
    wanted = {_key(p): tuple(v.shape) for p, v in jax.tree_util.tree_flatten_with_path(
        {"params": abstract.params, "batch_stats": abstract.batch_stats})[0]}
    stored = {k: v for k, v in stored.items() if k.startswith(("params/", "batch_stats/"))}
    problems = [f"{k}: checkpoint {stored[k]}, config {wanted[k]}"
                for k in sorted(wanted, key=lambda k: (not k.startswith("params/"), k))
                if k in stored and stored[k] != wanted[k]]
    missing = sorted(set(wanted) - set(stored))
    extra = sorted(set(stored) - set(wanted))
    if missing:
        problems.append(f"{len(missing)} array(s) the config's model needs are not in the "
                        f"checkpoint, e.g. {missing[0]}")
    if extra:
        problems.append(f"{len(extra)} array(s) in the checkpoint are not in the config's model, "
                        f"e.g. {extra[0]}")
    if problems:
        m = config.model
        raise CheckpointError(
            f"checkpoint {ref.checkpoint_dir} (step {ref.step}) was not trained with the config "
            f"{config_path} (model.variant={m.variant!r}, model.hidden={m.hidden}, "
            f"frontend {config.frontend.n_bins}x{config.frontend.n_frames}, "
            f"{len(config.data.classes)} classes): " + "; ".join(problems[:4]))


def restore_variables(ref: FoldRef):
    """(config, {'params', 'batch_stats'} as numpy arrays) of one trained fold."""
    from adarl_jax.checkpoint import FoldCheckpointer

    config, config_path = _run_config(ref)
    abstract = _abstract_state(config)
    _check_shapes(ref, config, config_path, abstract)
    ckpt = FoldCheckpointer(ref.checkpoint_dir)
    try:
        state, _ = ckpt.restore(abstract, ref.step)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {ref.checkpoint_dir} (step {ref.step}) does not match "
                              f"the config {config_path}: {e}") from e
    finally:
        ckpt.close()
    variables = jax.device_get(state.eval_variables)
    return config, variables


# ---------------------------------------------------------------------------------------------
# Inputs


def expand_inputs(paths: Iterable) -> list[str]:
    """Audio paths from files, folders (recursive, AUDIO_EXTENSIONS) and lists of paths.

    A list is a text file (.txt, .lst, .list) with one path per line (lines starting with '#'
    are comments);
    its relative paths are relative to the list's folder. Anything else is taken as an audio
    file, so a missing or unreadable one is reported with the predictions. Order is kept,
    duplicates are dropped.
    """
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = sorted(os.path.join(root, f) for root, _, files in os.walk(p) for f in files
                           if f.lower().endswith(AUDIO_EXTENSIONS))
            if not found:
                log.warning("%s: no audio files (%s) in this folder", p, ", ".join(AUDIO_EXTENSIONS))
            out += found
        elif p.lower().endswith(LIST_EXTENSIONS) and os.path.isfile(p):
            base = os.path.dirname(p)
            with open(p) as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        out.append(line if os.path.isabs(line) else os.path.join(base, line))
        else:
            out.append(p)
    seen: set[str] = set()
    return [p for p in out if not (os.path.abspath(p) in seen or seen.add(os.path.abspath(p)))]


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


@dataclasses.dataclass
class _Job:
    """One input's progress: its segments' probabilities arrive batch by batch."""

    path: str | None
    starts: list = dataclasses.field(default_factory=list)
    lengths: list = dataclasses.field(default_factory=list)
    probs: dict = dataclasses.field(default_factory=dict)  # segment index -> (K,) probabilities
    duration_s: float | None = None
    error: str | None = None
    warnings: list = dataclasses.field(default_factory=list)  # audio.py's suspect-file lines
    read_done: bool = False

    @property
    def done(self) -> bool:
        return self.read_done and len(self.probs) == len(self.starts)


class Predictor:
    """A trained model with its front end, jit-compiled once per bucket size."""

    def __init__(self, config, variables, buckets: Sequence[int] = DEFAULT_BUCKETS,
                 source: str = "", n_models: int = 1):
        """`variables` {'params', 'batch_stats'}; with n_models > 1 every leaf has a leading
        axis of that size (an ensemble, e.g. all LOSO folds) and probabilities are averaged."""
        from adarl_jax.dataset import min_samples_for
        from adarl_jax.model import build_model

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
        self._infer = jax.jit(self._waves_to_probs)
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

    # -- the jitted computation ------------------------------------------------------------

    def spectrogram_probs(self, variables, x):
        """(B, F, T, 3) spectrograms -> (B, K) class probabilities (what `export` saves)."""
        def one(v):
            out = self.model.apply(v, x, train=False)
            return jax.nn.softmax(out["emotion_logits"].astype(jnp.float32), axis=-1)

        if self.n_models == 1:
            return one(variables)
        return jax.vmap(one)(variables).mean(axis=0)

    def _waves_to_probs(self, variables, waves, lengths, norm=None):
        self.compilations += 1  # Python runs here only while jax traces a new batch shape
        x = spectrogram(waves, lengths, self.spec)
        if norm is not None:  # the speaker's standardisation, on valid frames only
            valid = valid_frames(lengths, self.spec.hop, self.spec.n_frames)[:, None, :, None]
            x = jnp.where(valid, (x - norm[0]) / norm[1], 0.0)
        return self.spectrogram_probs(variables, x)

    @property
    def uses_speaker_norm(self) -> bool:
        return self.spec.normalize == "speaker"

    def adapt_to_speaker(self, paths=None, waveform=None, sample_rate: int | None = None) -> None:
        """frontend.normalize='speaker': take the statistics of one speaker's audio (files, or
        one waveform) for the predictions that follow. Transductive, as in training: the
        speaker's own unlabelled audio, ideally more than the utterances being predicted."""
        from adarl_jax.dataset import speaker_statistics, speaker_statistics_of_files, valid_frame_count

        if paths is not None:
            mean, std = speaker_statistics_of_files([os.fspath(p) for p in paths], self.config)
        else:
            wave = self._prepare_wave(waveform, sample_rate)
            segs, lengths, _ = segment(wave, self.sample_rate, self.segment_s, self.min_tail_s)
            raw = np.asarray(jax.jit(lambda w, n: spectrogram(w, n, self.spec))(segs, lengths))
            frames = np.array([valid_frame_count(self.config, n) for n in lengths])
            mean, std = speaker_statistics(raw, frames, np.zeros(len(raw), np.int64))[0]
        self.speaker_norm = (jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32))

    def probs_of_spectrograms(self, x) -> np.ndarray:
        """Probabilities of ready-made spectrogram segments (any batch size; not bucketed)."""
        return np.asarray(self._spectrogram_probs(self.variables, jnp.asarray(x, jnp.float32)))

    # -- streaming segments through the buckets -------------------------------------------

    def _run(self, sources: Iterable[tuple[str | None, Callable[[list], Iterator]]],
             on_done: Callable[[int, _Job], None]) -> dict:
        """Feeds every source's segments through the buckets; calls on_done(i, job) in order."""
        top = self.buckets[-1]
        waves = np.zeros((top, self.segment_length), np.float32)
        lengths = np.full((top,), self.segment_length, np.int32)
        owners: list[tuple[_Job, int]] = []
        jobs: list[_Job] = []
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
            probs = np.asarray(self._infer(self.variables, waves[:size], lengths[:size],
                                           self.speaker_norm))
            for (job, k), p in zip(owners[:n], probs[:n]):
                job.probs[k] = p
            del owners[:n]
            waves[:len(owners)] = waves[n:n + len(owners)]
            lengths[:len(owners)] = lengths[n:n + len(owners)]
            stats["batches"] += 1
            stats["padded"] += size - n
            emit()

        for path, open_segments in sources:
            job = _Job(path)
            jobs.append(job)
            for wave, length, start in _read(job, open_segments):
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
                job.duration_s = _duration(path)
            job.read_done = True
            emit()
        for size in plan_batches(len(owners), self.buckets):
            run_batch(size)
        emit()
        return stats

    def _record(self, job: _Job, timeline: bool) -> dict:
        """The public per-input dict. Non-finite probabilities (a diverged model) are an
        error, never a result."""
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
        return rec

    # -- public API ------------------------------------------------------------------------

    def predict(self, waveform, sample_rate: int, timeline: bool = False) -> dict:
        """Probabilities of one recording: waveform (samples,) or (samples, channels), any rate.

        Channels are averaged and the rate converted as for files (`audio.load_audio`).
        Raises ValueError for an empty, too short or non-finite waveform (or a model that gives
        non-finite probabilities); 'warning' says when the recording is (near-)silent.
        """
        wave = self._prepare_wave(waveform, sample_rate)
        saved = self.speaker_norm
        if self.uses_speaker_norm and saved is None:  # the recording is its own speaker
            self.adapt_to_speaker(waveform=wave, sample_rate=self.sample_rate)
        segs, lengths, starts = segment(wave, self.sample_rate, self.segment_s, self.min_tail_s)
        out: list[dict] = []
        job_source = [(None, lambda warnings: zip(segs, lengths, starts))]
        try:
            self._run(job_source, lambda i, job: out.append(self._record(job, timeline)))
        finally:
            self.speaker_norm = saved
        rec = out[0]
        rec["duration_s"] = round(len(wave) / self.sample_rate, 3)
        if rec["error"]:
            raise ValueError(rec["error"])
        rec["warning"] = level_warning(float(np.max(np.abs(wave))), float(np.dot(wave, wave)),
                                       wave.size)
        del rec["path"]
        return rec

    def _prepare_wave(self, waveform, sample_rate: int) -> np.ndarray:
        from scipy.signal import resample_poly

        x = np.asarray(waveform, np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
        if x.ndim != 1:
            raise ValueError(f"waveform must be (samples,) or (samples, channels), got {x.shape}")
        if x.size == 0:
            raise ValueError("empty waveform")
        if not np.all(np.isfinite(x)):
            raise ValueError("waveform contains NaN or infinite values")
        if int(sample_rate) != self.sample_rate:
            g = np.gcd(int(sample_rate), self.sample_rate)
            x = resample_poly(x, self.sample_rate // g, int(sample_rate) // g).astype(np.float32)
        if x.size < self.min_samples:
            raise ValueError(f"too short: {x.size} samples at {self.sample_rate} Hz, "
                             f"need at least {self.min_samples}")
        return x

    def predict_files(self, paths: Iterable, timeline: bool = False, progress: bool = False,
                      stats: dict | None = None) -> list[dict]:
        """One dict per file, in order: path, emotion, probs {class: p}, duration_s, segments,
        error (None when fine), warning (None, or why the result is suspect: a silent or
        truncated file) and, with timeline, one entry per segment. A file that cannot be read
        gets its error and no probabilities; the others are predicted."""
        from tqdm.auto import tqdm

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
                results[i] = self._record(job, timeline)
                failed += results[i]["error"] is not None
                warned += results[i]["warning"] is not None
                bar.update(1)
                if failed:
                    bar.set_postfix(failed=failed)

            try:
                run_stats = self._run(sources, done)
            finally:
                self.speaker_norm = saved
        if stats is not None:
            seconds = time.perf_counter() - t0
            stats.update(run_stats, files=len(paths), failed=failed, warned=warned, seconds=seconds,
                         compilations=self.compilations)
        return results


def _read(job: _Job, open_segments: Callable[[list], Iterator]) -> Iterator:
    """The source's segments; a read error ends them and is kept in job.error (errors of the
    model, raised in the consumer, are not caught here). The source appends its warnings to
    the list it is given."""
    try:
        yield from open_segments(job.warnings)
    except AudioError as e:
        job.error = e.reason
    except Exception as e:  # a batch of thousands must survive one odd file
        job.error = f"{type(e).__name__}: {e}"


def _duration(path: str) -> float | None:
    try:
        import soundfile as sf

        info = sf.info(path)
        return info.frames / info.samplerate if info.samplerate else None
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# Output


def _row(rec: dict, classes: Sequence[str], timeline: bool) -> dict:
    row = {"path": rec.get("path")}
    if timeline:
        row["start_s"] = None
    row["emotion"] = rec["emotion"]
    for c in classes:
        row[f"p_{c}"] = None if rec["probs"] is None else rec["probs"][c]
    row.update(duration_s=rec["duration_s"], segments=rec["segments"], error=rec["error"],
               warning=rec.get("warning"))
    return row


def _segment_row(path, seg: dict, classes: Sequence[str]) -> dict:
    row = {"path": path, "start_s": seg["start_s"], "emotion": seg["emotion"]}
    row.update({f"p_{c}": seg["probs"][c] for c in classes})
    row.update(duration_s=seg["duration_s"], segments=1, error=None, warning=None)
    return row


def write_predictions(records: list[dict], out, classes: Sequence[str], timeline: bool = False) -> None:
    """CSV (by extension .csv) or JSON (.json) of predict_files' records, written atomically.

    CSV columns: path, [start_s,] emotion, p_<class>..., duration_s, segments, error (empty
    when fine), warning (empty unless the file is silent or truncated); with timeline each file's row (start_s empty) is followed by one row per
    segment. JSON: a list of objects with the same fields; the segments go in 'timeline'.
    """
    out = os.fspath(out)
    ext = os.path.splitext(out)[1].lower()
    if ext == ".json":
        rows = []
        for rec in records:
            row = _row(rec, classes, False)
            if timeline:
                row["timeline"] = [{k: v for k, v in _segment_row(rec["path"], s, classes).items()
                                    if k not in ("path", "segments", "error", "warning")}
                                   for s in rec.get("timeline", [])]
            rows.append(row)
        write_text_atomic(out, json.dumps(rows, indent=1) + "\n")
        return
    if ext != ".csv":
        raise ValueError(f"--out {out}: expected a .csv or .json file name")
    fields = list(_row({"path": "", "emotion": None, "probs": None, "duration_s": None,
                        "segments": 0, "error": None}, classes, timeline))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    blank = lambda r: {k: ("" if v is None else v) for k, v in r.items()}
    for rec in records:
        writer.writerow(blank(_row(rec, classes, timeline)))
        if timeline:
            for seg in rec.get("timeline", []):
                writer.writerow(blank(_segment_row(rec["path"], seg, classes)))
    write_text_atomic(out, buf.getvalue())
