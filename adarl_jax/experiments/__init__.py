"""The jobs that run many folds: the LOSO runner, worker processes, the hyper-parameter tune
and the final model trained on every speaker.
"""

from adarl_jax.experiments.loso import (
    fold_scores, prepare, run, run_folds, run_job, save_run_config, train_variants)
from adarl_jax.experiments.workers import (
    Claims, available_cores, default_workers, run_workers, worker_argv)
from adarl_jax.experiments.tune import candidate_configs, choose_winners, load_grid, run_tune, tune_markdown
from adarl_jax.experiments.final_model import EPOCHS_RULE, epochs_rule, train_final

__all__ = ["Claims", "EPOCHS_RULE", "available_cores", "candidate_configs", "choose_winners", "default_workers",
           "epochs_rule", "fold_scores", "load_grid", "prepare", "run", "run_folds", "run_job", "run_tune",
           "run_workers", "save_run_config", "train_final", "train_variants", "tune_markdown",
           "worker_argv"]
