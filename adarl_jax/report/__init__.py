"""Reading finished folds into results: the report and its tables, figures, spaces of a fold's
embeddings, paired statistics, summaries over seeds and the model card.
"""

from adarl_jax.report.report import (
    ablation_markdown, baseline_fit, baselines_markdown, domain_word, markdown, ordered_variants,
    summarize, table4_markdown, tsne_panels, write_figures, write_report)
from adarl_jax.report.figures import MIN_TSNE_POINTS, plot_confusion, plot_tsne_grid, tsne_embedding
from adarl_jax.report.fold_spaces import (
    BASIS_PER_MODEL, BASIS_POOLED, GENDER, center_distances, domain_of, fold_space, FoldSpace,
    gender_center_summary, male_female)
from adarl_jax.report.paired import paired_comparison, paired_table, speaker_ua
from adarl_jax.report.seeds import (
    ensemble_folds, mean_std, seeds_markdown, summarize_seeds, write_seeds_report)
from adarl_jax.report.model_card import corpus_licence

__all__ = ["BASIS_PER_MODEL", "BASIS_POOLED", "GENDER", "MIN_TSNE_POINTS", "ablation_markdown", "baseline_fit",
           "baselines_markdown", "center_distances", "corpus_licence", "domain_of", "domain_word",
           "ensemble_folds", "fold_space", "FoldSpace", "gender_center_summary", "male_female", "markdown",
           "mean_std", "ordered_variants", "paired_comparison", "paired_table", "plot_confusion",
           "plot_tsne_grid", "seeds_markdown", "speaker_ua", "summarize", "summarize_seeds", "table4_markdown",
           "tsne_embedding", "tsne_panels", "write_figures", "write_report", "write_seeds_report"]
