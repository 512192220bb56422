"""Training one LOSO fold: batches, the epoch loop, checkpoints, selection and the test.

`run_fold` trains and tests a fold and returns its record (`loso.run_folds` decides which
folds run and writes their result.json) in named steps, read top to bottom:
`setup_run` (a FoldRun: initial state, epoch loop, evaluator, seeds), `open_checkpoints`
(Checkpoints: the run's folder, its last and best checkpoints), `resume` (Resume: the state,
the epochs still to train, the best so far), `train_epochs` (the epoch loop: Trained),
`select_model` and `result_record`. The final model (experiments.final_model) runs the same
steps up to `train_epochs`. An interrupted fold restarts from its last epoch checkpoint, and
because every epoch's shuffle is derived from (seed, fold, epoch) the resumed run ends with
the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from adarl_jax.metrics import score_utterances
from adarl_jax.data.augment import make_augment
from adarl_jax.data.functionals import attach_functionals, segment_functionals
from adarl_jax.data.speed import speed_copies, speeds_of
from adarl_jax.train import sharding
from adarl_jax.train.checkpoint import FoldCheckpointer
from adarl_jax.train.epochs import ScanLoop, StepLoop, check_diverged, finish_epoch
from adarl_jax.workdir.files import write_text_atomic
from adarl_jax.workdir.fold_record import fold_record
from adarl_jax.train.optim import (domain_loss_only, learning_rate_schedule, num_epochs,
                                   emotion_start_epoch, patience_over, patience_steps)
from adarl_jax.train.tb import open_scalar_log
from adarl_jax.train.forward import BatchedInference
from adarl_jax.train.programs import Programs, recipe_key, step_seed
from adarl_jax.train.train_step import (create_train_state_from_config, make_train_epoch,
                                        make_train_step, TrainState)
from adarl_jax.data.folds import missing_classes
from adarl_jax.train.test_statistics import (predictions_under_modes, statistics_views,
                                             training_statistics)
from adarl_jax.workdir.statistics_file import write_statistics

log = logging.getLogger(__name__)


def segment_labels(dataset, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    utt = dataset.segment_utt[segments]
    return dataset.emotion[utt].astype(np.int32), dataset.gender[utt].astype(np.int32)


def epoch_order(n: int, batch_size: int, seed: int, fold: int, epoch: int,
                groups: np.ndarray | None = None) -> np.ndarray:
    """(steps, batch) indices into the training segments for one epoch.

    A permutation, with the last batch filled by segments drawn again at random so that every
    batch is full (a short batch would recompile the step and skew BatchNorm). With `groups`
    (a group id per segment), n draws with replacement, each group equally likely overall.
    """
    rng = np.random.default_rng([seed, fold, epoch])
    if groups is None:
        order = rng.permutation(n)
    else:
        _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
        p = 1.0 / counts[inverse]
        order = rng.choice(n, size=n, replace=True, p=p / p.sum())
    steps = -(-n // batch_size)
    extra = steps * batch_size - n
    if extra:
        order = np.concatenate([order, rng.choice(n, size=extra, replace=extra > n)])
    return order.reshape(steps, batch_size)


def sampling_groups(config, emotion: np.ndarray, domain: np.ndarray) -> np.ndarray | None:
    """Group id per training segment for config.train.balance (None = plain shuffling)."""
    k = len(config.data.classes) + 1  # emotion -1 (unlabelled) is a group of its own
    return {"none": None, "class": emotion + 1, "gender": domain,
            "class_gender": domain * k + emotion + 1}[config.train.balance]


def class_weights_for(config, emotion: np.ndarray) -> np.ndarray | None:
    """Per-class emotion-loss weights: inverse frequency in this fold's training data."""
    k = len(config.data.classes)
    if config.loss.class_weighting == "none":
        return None
    if config.loss.class_weighting != "balanced":
        raise ValueError(f"loss.class_weighting={config.loss.class_weighting!r}: expected none|balanced")
    counts = np.bincount(emotion[emotion >= 0], minlength=k).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / k, 0.0)
    return w.astype(np.float32)


def utterance_predictions(dataset, utt_indices, evaluator, variables) -> dict:
    """Mean segment probabilities per utterance (Sec. 3.1), with deep features and gender."""
    segs = dataset.subset_segments(utt_indices)
    out = (evaluator(variables, dataset.features[segs], segment_functionals(dataset, segs))
           if len(segs) else {})
    seg_utt = dataset.segment_utt[segs]
    rows = []
    for u in utt_indices:
        sel = seg_utt == u
        if not np.any(sel):
            continue
        row = {
            "utterance": int(u),
            "path": dataset.utterances[u].path,
            "speaker": dataset.utterances[u].speaker,
            "emotion": int(dataset.emotion[u]),
            "gender": int(dataset.gender[u]),
            "segments": int(sel.sum()),
            "probs": out["emotion_probs"][sel].mean(0).round(6).tolist(),
            "deep_feature": out["deep_feature"][sel].mean(0).round(5).tolist(),
        }
        if "domain_probs" in out:
            row["domain_probs"] = out["domain_probs"][sel].mean(0).round(6).tolist()
        rows.append(row)
    return {"utterances": rows}


def _trim_jsonl(path: Path, keep_before_epoch: int) -> None:
    if not path.exists():
        return
    lines = [l for l in path.read_text().splitlines() if l.strip()]
    kept = [l for l in lines if json.loads(l).get("epoch", -1) < keep_before_epoch]
    write_text_atomic(path, "".join(l + "\n" for l in kept))


@dataclasses.dataclass(frozen=True)
class Seeds:
    """Every random stream of one training run (see `run_seeds`)."""
    init: jax.Array  # the parameters' PRNG key
    augment: int  # the train step's augmentation and mixup seed
    order: tuple[int, int]  # each epoch's shuffle seed but the epoch (see epoch_order)


@dataclasses.dataclass(frozen=True)
class FoldRun:
    """One training run as set up, before its first epoch: what the epoch loop reads."""
    state: TrainState  # the initial state, replicated over the mesh
    loop: StepLoop | ScanLoop  # one epoch (the epoch runner hides which)
    evaluator: BatchedInference
    steps_per_epoch: int
    n_train: int  # training segments
    groups: np.ndarray | None  # sampling group per training segment (config.train.balance)
    seeds: Seeds
    label: str  # names the run in logs and errors: 'fold 3 (s08)', 'final model'


@dataclasses.dataclass(frozen=True)
class Checkpoints:
    """A run's folder (metrics.jsonl, scalars), its epoch checkpoints and, under
    train.selection='val', its best-so-far one. A context manager: leaving it closes both,
    waiting for a save under way (also when stopped: the last save finishes, sealed)."""
    folder: Path
    last: FoldCheckpointer
    best: FoldCheckpointer | None

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.last.close()
        if self.best is not None:
            self.best.close()


@dataclasses.dataclass(frozen=True)
class Resume:
    """Where training starts: the state, the epochs still to train, the best validation so far."""
    state: TrainState
    epochs: range
    best: dict  # {'epoch', 'val_ua'}; epoch -1: none yet


@dataclasses.dataclass(frozen=True)
class Trained:
    """The run's end: its last state, best validation epoch, epochs in all, start time."""
    state: TrainState
    best: dict
    epochs: int
    t0: float


def run_seeds(config, index: int) -> Seeds:
    """The one seeding rule: every random stream of a training run from (train.seed, index),
    where index is the LOSO fold's (the final model takes the index after the last fold's)."""
    seed, index = int(config.train.seed), int(index)
    return Seeds(init=jax.random.fold_in(jax.random.key(seed, impl="rbg"), index),
                 augment=seed * 1000 + index, order=(seed, index))


def training_set(config, dataset, train_utts, train_segs: np.ndarray):
    """(features, segment indices into them, emotion, domain, functionals or None) of a run's
    training segments `train_segs` (of the utterances `train_utts`): the dataset's own, then,
    when the config asks for them, the same segments again under each statistics view
    (augment.statistics_views) and the utterances' segments played at each speed
    (augment.speeds), each with its labels."""
    emotion, domain = segment_labels(dataset, train_segs)
    functionals = segment_functionals(dataset, train_segs)
    if functionals is not None and speeds_of(config):  # validate refuses it too
        raise ValueError("augment.speeds is for a spectrogram-only variant: no functionals "
                         "are computed for the played-faster copies")
    views = len(config.augment.get("statistics_views", ()))
    copies = list(speed_copies(config, dataset, train_utts))
    if not views and not copies:
        return dataset.features, train_segs, emotion, domain, functionals
    n = len(train_segs)
    sizes = [n] * (1 + views) + [len(segs) for _, segs in copies]
    features = np.empty((sum(sizes), *dataset.features.shape[1:]), np.float32)
    features[:n] = dataset.features[train_segs]
    for k, view in enumerate(statistics_views(config, dataset, train_utts, train_segs), 1):
        features[k * n:(k + 1) * n] = view
    row, emotions, domains = n * (1 + views), [emotion] * (1 + views), [domain] * (1 + views)
    for copy, segs in copies:
        features[row:row + len(segs)] = copy.features[segs]
        row += len(segs)
        e, d = segment_labels(copy, segs)
        emotions.append(e)
        domains.append(d)
    functionals = None if functionals is None else np.tile(functionals, (1 + views, 1))
    return (features, np.arange(len(features)), np.concatenate(emotions), np.concatenate(domains),
            functionals)


def setup_run(config, dataset, fold, mesh, label: str | None = None,
              programs: Programs | None = None) -> FoldRun:
    """A run's initial (replicated) state, epoch loop (scan or step), evaluator and seeds,
    for the training utterances `fold.train`. `programs`: the job's shared functions
    (adarl_jax.train.programs), so that a run like an earlier one compiles nothing."""
    programs = Programs() if programs is None else programs
    batch_size = int(config.optim.batch_size)
    attach_functionals(config, dataset, progress=False)  # a variant that reads functionals gets them
    train_segs = dataset.subset_segments(fold.train)
    if len(train_segs) == 0:
        raise ValueError(f"fold {fold.index}: no training segments")
    features, train_segs, train_emotion, train_domain, functionals = training_set(
        config, dataset, fold.train, train_segs)
    steps_per_epoch = -(-len(train_segs) // batch_size)
    seeds = run_seeds(config, fold.index)
    model, state, tx = create_train_state_from_config(config, seeds.init, steps_per_epoch,
                                                      class_weights_for(config, train_emotion))
    recipe = (recipe_key(config), mesh)
    step_key = (*recipe, steps_per_epoch, step_seed(config, seeds.augment))
    train_step = programs.get(("train_step", *step_key), lambda: make_train_step(
        model, tx, (config.loss.domain_weight, config.loss.emotion_weight,
                    config.loss.center_weight), learning_rate_schedule(config, steps_per_epoch),
        make_augment(config), seeds.augment, float(config.augment.mixup_alpha),
        float(config.loss.label_smoothing), domain_loss_only(config)))
    use_scan = config.train.loop == "scan" or (config.train.loop == "auto"
                                               and jax.default_backend() != "cpu")
    data = (features, train_segs, train_emotion, train_domain, functionals)
    if use_scan:
        loop = ScanLoop(train_step, mesh, *data, train_epoch=programs.get(
            ("train_epoch", *step_key),
            lambda: make_train_epoch(train_step, sharding.batch_sharded(mesh))))
    else:  # the jitted step is the same program whenever train_step is the same function
        loop = StepLoop(train_step, mesh, *data)
    evaluator = programs.get(("evaluator", *recipe), lambda: BatchedInference(
        model, mesh, int(config.train.eval_batch_size)))
    return FoldRun(
        state=sharding.put_replicated(state, mesh), loop=loop, steps_per_epoch=steps_per_epoch,
        n_train=len(train_segs), groups=sampling_groups(config, train_emotion, train_domain),
        evaluator=evaluator, seeds=seeds, label=label or f"fold {fold.index} ({fold.test_speaker})")


def open_checkpoints(config, run_dir) -> Checkpoints:
    """The checkpoints of the run in `run_dir` (use as `with open_checkpoints(...) as ckpts`)."""
    run_dir = Path(run_dir)
    return Checkpoints(
        folder=run_dir,
        last=FoldCheckpointer(run_dir / "checkpoints", config.train.keep_checkpoints),
        best=FoldCheckpointer(run_dir / "best", 1) if config.train.selection == "val" else None)


def resume(config, run: FoldRun, ckpts: Checkpoints, epochs: int | None = None) -> Resume:
    """Training from the start, or after the last checkpoint (the metrics logged after it are
    dropped: the resumed epochs log them again), for `epochs` epochs in all (default: the
    config's)."""
    state, start, best = run.state, 0, {"epoch": -1, "val_ua": -1.0}
    if ckpts.last.latest_step() is not None:
        state, meta = ckpts.last.restore(state)
        start, best = int(meta["epoch"]) + 1, meta.get("best", best)
        log.info("%s: resuming after epoch %d", run.label, start - 1)
    if jax.process_index() == 0:
        _trim_jsonl(ckpts.folder / "metrics.jsonl", start)
    epochs = num_epochs(config, run.steps_per_epoch) if epochs is None else int(epochs)
    if start > 0 and patience_over(int(best["epoch"]), start - 1, run.steps_per_epoch,
                                   patience_steps(config, run.steps_per_epoch),
                                   emotion_start_epoch(config, run.steps_per_epoch)):
        epochs = start  # it had stopped early (train.patience_fraction): nothing left to train
    return Resume(state=state, epochs=range(start, max(start, epochs)), best=best)


def train_epochs(config, dataset, fold, run: FoldRun, ckpts: Checkpoints, start: Resume,
                 progress: bool) -> Trained:
    """The epoch loop: train, fetch the epoch's metrics once, validate, log, checkpoint; returns
    with every checkpoint written. Under train.patience_fraction it ends early, after the
    epoch that puts the best validation epoch that far behind (`optim.patience_over`)."""
    # checkpoint when train.checkpoint_every_steps have passed (0: every epoch) and at the end;
    # a resumed run restarts from the last one, so this bounds the work a kill can lose
    t0 = time.time()
    every, saved_step, pending_best = int(config.train.checkpoint_every_steps), None, None
    state, best, epochs = start.state, start.best, start.epochs
    last, done = epochs.stop - 1, epochs.stop
    limit = patience_steps(config, run.steps_per_epoch)
    first = emotion_start_epoch(config, run.steps_per_epoch)
    copy = sharding.jit_copy(run.loop.mesh)
    bar = tqdm(total=len(epochs) * run.steps_per_epoch, disable=not progress, leave=False,
               desc=f"{config.model.variant} {run.label}")
    scalars = (open_scalar_log(config, ckpts.folder, epochs.start) if jax.process_index() == 0
               else None)
    for epoch in epochs:
        order = epoch_order(run.n_train, int(config.optim.batch_size), *run.seeds.order, epoch,
                            run.groups)
        state, metrics = run.loop(state, order, lambda: bar.update(1))
        means, step, finite = finish_epoch(metrics, state)
        check_diverged(means, finite, f"{run.label}, epoch {epoch}", step, config.optim.lr)
        saved_step = step - len(order) if saved_step is None else saved_step
        bar.set_postfix(epoch=epoch, loss=f"{means['loss']:.3f}", lr=f"{means.get('lr', 0):.4g}")
        record = {"epoch": epoch, "step": step, "time_s": round(time.time() - t0, 2)}
        record.update({f"train_{k}": v for k, v in means.items()})
        if ckpts.best is not None:
            ua = _validate(config, dataset, fold, run.evaluator, state, record)
            if ua > best["val_ua"]:
                best = {"epoch": epoch, "val_ua": ua}
                # a copy: the next step donates (invalidates) this state's buffers
                pending_best = (epoch, copy(state), ua)
        stop = patience_over(int(best["epoch"]), epoch, run.steps_per_epoch, limit, first)
        if jax.process_index() == 0:
            with open(ckpts.folder / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if scalars is not None:
                scalars.write(record)
        if every <= 0 or epoch == last or stop or step - saved_step >= every:
            if pending_best is not None:  # the best so far goes to disk with the checkpoint
                e, s, ua = pending_best
                ckpts.best.save(e, s, {"epoch": e, "val_ua": ua})
                ckpts.best.wait()
                pending_best = None
            ckpts.last.save(epoch, state, {"epoch": epoch, "best": best})
            saved_step = step
        if stop:
            done = epoch + 1
            break
    bar.close()
    if scalars is not None:
        scalars.close()
    ckpts.last.wait()
    return Trained(state=state, best=best, epochs=done, t0=t0)


def _validate(config, dataset, fold, evaluator, state, record: dict) -> float:
    rows = utterance_predictions(dataset, fold.val, evaluator, state.eval_variables)["utterances"]
    val = score_utterances(rows, len(config.data.classes))
    record.update({f"val_{k}": v for k, v in val.items()})
    return val["ua"]


def select_model(trained: Trained, ckpts: Checkpoints) -> tuple:
    """(state, epoch) of the selected model: the best validation epoch under
    train.selection='val' (restored from its checkpoint), else the last epoch's."""
    if ckpts.best is not None and trained.best["epoch"] >= 0:
        state, _ = ckpts.best.restore(trained.state, trained.best["epoch"])
        return state, trained.best["epoch"]
    return trained.state, trained.epochs - 1


def result_record(config, dataset, fold, run: FoldRun, trained: Trained, state,
                  selected_epoch: int) -> dict:
    """The fold's result.json: the selected model on the test speaker (scored) and on its
    validation speakers (never scored: the per-model figures of adarl_jax.report.fold_spaces embed
    them beside the test speaker)."""
    rows = utterance_predictions(dataset, fold.test, run.evaluator, state.eval_variables)["utterances"]
    val_rows = (utterance_predictions(dataset, fold.val, run.evaluator, state.eval_variables)
                ["utterances"] if len(fold.val) else [])
    return fold_record(
        config, fold, config.model.variant, selection=config.train.selection,
        selected_epoch=selected_epoch,
        best_val_ua=trained.best["val_ua"] if config.train.selection == "val" else None,
        epochs=trained.epochs, steps=int(state.step),
        train_time_s=round(time.time() - trained.t0, 2),
        test=score_utterances(rows, len(config.data.classes)), utterances=rows,
        val_utterances=val_rows,
        **_under_user_statistics(config, dataset, fold, run.evaluator, state.eval_variables))


def _under_user_statistics(config, dataset, fold, evaluator, variables) -> dict:
    """{'test_statistics': ...} of adarl_jax.train.test_statistics ({} when no mode applies)."""
    modes = predictions_under_modes(config, dataset, fold,
                                    lambda x, u: evaluator(variables, x, u)["emotion_probs"],
                                    int(config.train.seed))
    return {"test_statistics": modes} if modes else {}


def keep_training_statistics(config, dataset, fold, folder) -> None:
    """A speaker-normalised model keeps its training speakers' pooled statistics in `folder`
    (adarl_jax.workdir.statistics_file), for `predict --speaker-from training`."""
    if config.frontend.normalize == "speaker" and jax.process_index() == 0:
        write_statistics(folder, training_statistics(dataset, fold.train))


def run_fold(config, dataset, fold, fold_dir, mesh=None, progress: bool = True,
             programs: Programs | None = None) -> dict:
    """Trains (resuming from the fold's checkpoints) and tests one fold; returns its result
    record without writing it: whoever decides that the fold is to run writes it.
    `programs`: functions shared with the job's other folds (see setup_run)."""
    run = setup_run(config, dataset, fold, sharding.checked_mesh(config, mesh),
                    programs=programs)
    with open_checkpoints(config, fold_dir) as ckpts:
        start = resume(config, run, ckpts)
        trained = train_epochs(config, dataset, fold, run, ckpts, start,
                               progress and jax.process_index() == 0)
        state, selected_epoch = select_model(trained, ckpts)
        result = result_record(config, dataset, fold, run, trained, state, selected_epoch)
    keep_training_statistics(config, dataset, fold, fold_dir)
    missing = missing_classes(fold, dataset.utterances, config.data.classes)
    if missing:  # trained under train.allow_missing_class: the report marks the fold
        result["missing_classes"] = missing
    return result
