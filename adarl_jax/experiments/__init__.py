"""The jobs that run many folds: the LOSO runner, worker processes, the hyper-parameter tune
and the final model trained on every speaker.
"""

from adarl_jax.experiments.loso import (
    check_domains, corpus_dir, fold_scores, load_dataset, prepare, read_utterances, reads_same_data,
    run, run_folds, run_job, save_run_config, train_variants)
from adarl_jax.experiments.workers import (
    available_cores, default_workers, run_workers, split_folds, worker_argv)
from adarl_jax.experiments.tune import candidate_configs, choose_winners, load_grid, run_tune, tune_markdown
from adarl_jax.experiments.final_model import EPOCHS_RULE, epochs_rule, train_final

__all__ = ["EPOCHS_RULE", "available_cores", "candidate_configs", "check_domains", "choose_winners",
           "corpus_dir", "default_workers", "epochs_rule", "fold_scores", "load_dataset", "load_grid",
           "prepare", "read_utterances", "reads_same_data", "run", "run_folds", "run_job", "run_tune",
           "run_workers", "save_run_config", "split_folds", "train_final", "train_variants", "tune_markdown",
           "worker_argv"]
