"""Training one fold: the pure train step (Eq. 1-10's losses, the optimiser), the epoch loop, the
fold trainer, forward passes over segment batches, the device mesh, checkpoints, logging and
process start-up.
"""

from adarl_jax.train.train_step import (
    create_train_state, create_train_state_from_config, make_multi_fold_step, make_train_epoch,
    make_train_step, stack_states, TrainState)
from adarl_jax.train.epochs import all_finite, check_diverged, finish_epoch, host_batches, ScanLoop, StepLoop
from adarl_jax.train.trainer import (
    Checkpoints, class_weights_for, epoch_order, FoldRun, open_checkpoints, result_record, resume,
    Resume, run_fold, run_seeds, sampling_groups, Seeds, segment_labels, select_model, setup_run,
    train_epochs, Trained, utterance_predictions)
from adarl_jax.train.optim import (
    averaged_params, learning_rate_schedule, make_optimizer, num_epochs, param_average,
    ParamAverageState)
from adarl_jax.train.losses import center_loss, cross_entropy, total_loss
from adarl_jax.train.checkpoint import (
    abstract_train_state, arrays_checksum, CheckpointCorruptError, file_manifest, FoldCheckpointer,
    manifest_problem, shape_problems, tree_key, tree_shapes)
from adarl_jax.train.sharding import (
    batch_sharded, check_batch_size, checked_mesh, jit_copy, jit_predict, jit_train_epoch,
    jit_train_step, make_mesh, prefetch_batches, put_batch, put_replicated, replicated)
from adarl_jax.train.tb import open_scalar_log, ScalarLog, scalars_of
from adarl_jax.train.forward import BatchedInference, make_predict_fn, segment_outputs

__all__ = ["abstract_train_state", "all_finite", "arrays_checksum", "averaged_params", "batch_sharded",
           "BatchedInference", "center_loss", "Checkpoints", "check_batch_size", "check_diverged", "checked_mesh",
           "CheckpointCorruptError", "class_weights_for", "create_train_state",
           "create_train_state_from_config", "cross_entropy", "epoch_order", "file_manifest", "finish_epoch",
           "FoldCheckpointer", "FoldRun", "host_batches", "jit_copy", "jit_predict", "jit_train_epoch", "jit_train_step",
           "learning_rate_schedule", "make_mesh", "make_multi_fold_step", "make_optimizer", "make_predict_fn",
           "make_train_epoch", "make_train_step", "manifest_problem", "num_epochs", "open_checkpoints",
           "open_scalar_log", "param_average", "ParamAverageState", "prefetch_batches", "put_batch",
           "put_replicated", "replicated", "result_record", "resume", "Resume", "run_fold", "run_seeds",
           "sampling_groups", "ScalarLog", "scalars_of", "ScanLoop", "Seeds", "segment_labels",
           "segment_outputs", "select_model", "setup_run", "shape_problems", "stack_states", "StepLoop", "total_loss",
           "train_epochs", "Trained", "TrainState", "tree_key", "tree_shapes", "utterance_predictions"]
