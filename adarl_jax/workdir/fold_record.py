"""A LOSO fold's result record (its result.json): the fields every model's record shares.

The neural variants (adarl_jax.train.trainer) and the openSMILE baselines (adarl_jax.baselines.opensmile)
write the same header, in the same order, then their own fields:

  variant, fold, test_speaker, train_speakers, val_speakers, classes, genders, domains,
  domain_column, selection, selected_epoch, best_val_ua, epochs, steps, train_time_s, seed,
  ...the runner's own fields (test, utterances, ...)

adarl_jax.report.report and adarl_jax.experiments.final_model read these fields from any variant's folds.
"""

from __future__ import annotations

__all__ = ["HEADER", "fold_record", "refitted_on_val"]

HEADER = ("variant", "fold", "test_speaker", "train_speakers", "val_speakers", "classes",
          "genders", "domains", "domain_column", "selection", "selected_epoch", "best_val_ua",
          "epochs", "steps", "train_time_s", "seed")


def fold_record(config, fold, variant: str, *, selection: str, selected_epoch, best_val_ua,
                epochs, steps, train_time_s: float, **fields) -> dict:
    """The record of `fold` (a folds.Fold) of `variant` under `config`: the shared header,
    then `fields` in the order given. `config.data.genders` are the domain values (named
    both `genders` and `domains`), `config.train.seed` the seed."""
    return {
        "variant": variant,
        "fold": fold.index,
        "test_speaker": fold.test_speaker,
        "train_speakers": list(fold.train_speakers),
        "val_speakers": list(fold.val_speakers),
        "classes": list(config.data.classes),
        "genders": list(config.data.genders),
        "domains": list(config.data.genders),
        "domain_column": str(config.data.domain_column),
        "selection": selection,
        "selected_epoch": selected_epoch,
        "best_val_ua": best_val_ua,
        "epochs": epochs,
        "steps": steps,
        "train_time_s": train_time_s,
        "seed": int(config.train.seed),
        **fields,
    }


def refitted_on_val(result: dict) -> bool:
    """Whether a baseline result record's final model was fitted on validation speakers too:
    whether one is among its `baseline.fit_speakers` (recorded since the first baseline run, so
    this also reads records from before `refit_on_val` was recorded)."""
    val = set(result.get("val_speakers") or ())
    fit = set(result.get("baseline", {}).get("fit_speakers") or ())
    return bool(val & fit)
