"""The classic baselines: openSMILE functionals and a linear SVM on the same LOSO folds.
"""

from adarl_jax.baselines.linear_svm import (
    C_GRID, C_SELECT, DEFAULT_C, fit_fold, fit_svm, LinearModel, refitted_on_val)

__all__ = ["C_GRID", "C_SELECT", "DEFAULT_C", "fit_fold", "fit_svm", "LinearModel", "refitted_on_val"]
