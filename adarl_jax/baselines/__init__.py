"""The classic baselines: openSMILE functionals and a linear SVM on the same LOSO folds.
"""

from adarl_jax.baselines.opensmile import (
    FEATURE_SETS, corpus_utterances, extract_features, FeatureTable, opensmile_available,
    normalizations, opensmile_extractor, run_baselines, run_opensmile_svm, speaker_zscore,
    variant_name)
from adarl_jax.baselines.linear_svm import C_GRID, C_SELECT, DEFAULT_C, fit_fold, fit_svm, LinearModel

__all__ = ["C_GRID", "C_SELECT", "DEFAULT_C", "FEATURE_SETS", "corpus_utterances", "extract_features",
           "FeatureTable", "fit_fold", "fit_svm", "LinearModel", "opensmile_available", "opensmile_extractor",
           "normalizations", "run_baselines", "run_opensmile_svm", "speaker_zscore", "variant_name"]
