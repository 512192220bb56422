"""Which speaker statistics should `predict` use? The statistics modes scored on validation
speakers, never on a test speaker: `adarl-jax analyze --statistics`.

Every fold model of a speaker-normalised variant labels its fold's validation speakers (drawn
from the fold's training speakers; the model's epoch was chosen on them, its weights never
saw them) under each mode of adarl_jax.train.test_statistics, as it labels the test speaker
after training: `all` (the speaker's own statistics, the LOSO rule), `utterance` (each
recording alone), `enrol:K` (K of the speaker's recordings, not scored), `pooled`, `train`
(the training speakers' pooled statistics, none of the speaker's own). UA is pooled over the
folds' validation utterances (per draw; mean and sd over draws). A choice of `predict`'s
default made from this table involves no test speaker.

  W/<variant>/val_statistics.json, W/val_statistics_<variant>.md
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from adarl_jax import metrics
from adarl_jax.data.folds import config_folds
from adarl_jax.data.functionals import attach_functionals
from adarl_jax.data.reading import load_dataset
from adarl_jax.inference.fold_models import find_fold, restore_variables
from adarl_jax.model import build_model
from adarl_jax.train import sharding
from adarl_jax.train.forward import BatchedInference
from adarl_jax.train.test_statistics import pooled_ua, predictions_under_modes
from adarl_jax.train.trainer import utterance_predictions
from adarl_jax.workdir.files import write_json_atomic, write_text_atomic

__all__ = ["MODES", "validation_statistics", "score_fold_validation"]

MODES = ("utterance", "enrol:3", "enrol:10", "train")


def score_fold_validation(config, variables, dataset, fold, modes=MODES, mesh=None) -> dict:
    """One fold model on its validation speakers: {'utterances': rows under their own
    statistics, 'test_statistics': {mode: labels per draw}} (a fold record's shape, so that
    `pooled_ua` pools it)."""
    mesh = mesh or sharding.make_mesh()
    attach_functionals(config, dataset, progress=False)
    evaluator = BatchedInference(build_model(config), mesh, int(config.train.eval_batch_size))
    as_test = dataclasses.replace(fold, test=fold.val)
    scored = config.copy_and_resolve_references()
    scored.eval.test_statistics = tuple(modes)
    labels = predictions_under_modes(
        scored, dataset, as_test, lambda x, u: evaluator(variables, x, u)["emotion_probs"],
        int(config.train.seed))
    rows = utterance_predictions(dataset, fold.val, evaluator, variables)["utterances"]
    return {"fold": fold.index, "val_speakers": list(fold.val_speakers), "utterances": rows,
            "test_statistics": labels}


def validation_statistics(workdir, variant: str | None = None, modes=MODES,
                          dataset=None) -> tuple[Path, dict]:
    """Every fold model of `variant` scored on its validation speakers under each mode;
    writes the JSON and the markdown table; returns (the .md, {mode: pooled UA record})."""
    refs = find_fold(workdir, variant, "all")
    variant = refs[0].variant
    records, config = [], None
    for ref in refs:
        config, variables = restore_variables(ref)
        if config.frontend.normalize != "speaker":
            raise ValueError(f"{variant}: trained with frontend.normalize="
                             f"{config.frontend.normalize!r}; the statistics modes apply to a "
                             "speaker-normalised model only")
        if dataset is None:
            dataset = load_dataset(config, workdir, progress=False)
        fold = config_folds(config, dataset.utterances, str(ref.fold))[0]
        if not len(fold.val):
            raise ValueError(f"fold {ref.fold}: no validation speakers (train.selection='val' "
                             "draws them)")
        records.append(score_fold_validation(config, variables, dataset, fold, modes))
    nc = len(config.data.classes)
    own = metrics.score_utterances([u for r in records for u in r["utterances"]], nc)
    summary = {"all": {"ua": own["ua"], "sd": 0.0, "draws": 1, "n": own["n"],
                       "folds": len(records)},
               **pooled_ua(records, nc)}
    workdir = Path(workdir)
    write_json_atomic(workdir / variant / "val_statistics.json",
                      {"summary": summary, "folds": records})
    lines = ["# Speaker statistics on validation speakers", "",
             f"`{variant}`, {len(records)} fold models, each on its own validation speakers "
             "(no test speaker). UA pooled over folds; mean ± sd over draws.", "",
             "| statistics | UA | draws | utterances scored |", "|---|---|---|---|"]
    names = {"all": "all of the speaker's utterances (the LOSO rule)",
             "utterance": "each recording alone", "train": "the training speakers' (none of its own)",
             "pooled": "all validation utterances together"}
    for mode, s in summary.items():
        label = names.get(mode, f"{mode.split(':')[1]} of its utterances" if mode.startswith("enrol")
                          else mode)
        sd = f" ± {s['sd']:.3f}" if s["draws"] > 1 else ""
        lines.append(f"| {label} (`{mode}`) | {s['ua']:.3f}{sd} | {s['draws']} | {s['n']} |")
    md = workdir / f"val_statistics_{variant}.md"
    write_text_atomic(md, "\n".join(lines) + "\n")
    return md, summary
