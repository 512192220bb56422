"""Late fusion: the CNN and the per-speaker functionals baselines as one system.

Per LOSO fold, each utterance's emotion probabilities are the mean of those of `MEMBERS`: the
adarl fold model (its validation-selected epoch) and the eGeMAPS and ComParE + linear SVM
models fitted on the same fold's training speakers, each recording's functionals z-scored with
its speaker's statistics as the CNN's spectrograms are (`baselines.normalize` 'speaker'). A
fixed rule: equal weights, nothing tuned, no label of the test speaker read. The SVM's
probabilities are `LinearModel.probs` (a softmax of its pairwise votes plus confidence).

The fused system is scored like a variant: on the test speakers (`utterances`) and, where every
member kept them, on the validation speakers (`val_utterances`), where a choice may read it.
`with_late_fusion` adds it to what `adarl_jax.workdir.layout.collect` read, under `NAME`, on
the folds every member finished; the report, `seeds` and `contrast` read workdirs through
`collect_systems`.
"""

from __future__ import annotations

import logging

from adarl_jax.report.averaging import average_folds
from adarl_jax.workdir.layout import collect

__all__ = ["NAME", "CNN", "FUNCTIONALS", "MEMBERS", "GLOBAL_BELOW", "late_fusion_folds", "with_late_fusion", "collect_systems"]

log = logging.getLogger(__name__)

NAME = "adarl_late_fusion"
CNN = "adarl"
FUNCTIONALS = ("egemaps", "compare")  # the SVMs' openSMILE sets, per speaker
MEMBERS = (CNN, *(f"opensmile_{fs}_spk_svm" for fs in FUNCTIONALS))
# A final model's fusion scores a speaker group of fewer recordings than this, and a recording
# standardised with the training speakers' statistics, with globally standardised SVMs (no
# speaker statistics; the per-speaker SVMs above need the speaker's): chosen by a rule written
# before the runs, on the validation speakers of both development corpora, among 2, 4 and 11
# (RESULTS.md, "The late fusion's SVMs for small speaker groups"). The LOSO report's fusion
# standardises each test speaker with all of its recordings, so its members stay per speaker.
GLOBAL_BELOW = 11


def late_fusion_folds(collected: dict[str, list[dict]], members=MEMBERS,
                      name: str = NAME) -> list[dict]:
    """The fused system's fold records (test and, where all members have them, validation
    utterances) on the folds every member finished; [] when a member is missing."""
    if not all(collected.get(m) for m in members):
        return []
    runs = [collected[m] for m in members]
    folds = set.intersection(*[{r["fold"] for r in rs} for rs in runs])
    for f in folds:
        held = {tuple(next(r for r in rs if r["fold"] == f)["val_speakers"]) for rs in runs}
        if len(held) > 1:
            raise ValueError(f"fold {f}: {', '.join(members)} validated on different speakers "
                             f"({sorted(held)}); they are not one fold split")
    out = average_folds(runs, folds, by_index=False)
    if all(r.get("val_utterances") for rs in runs for r in rs if r["fold"] in folds):
        val = {r["fold"]: r for r in average_folds(runs, folds, "val_utterances", by_index=False)}
        out = [{**r, "val_utterances": val[r["fold"]]["val_utterances"],
                "validation": val[r["fold"]]["validation"]} for r in out]
    else:
        out = [{k: v for k, v in r.items() if k != "val_utterances"} for r in out]
    drop = ("baseline", "test_statistics", "gender_accuracy")
    return [{**{k: v for k, v in r.items() if k not in drop}, "variant": name,
             "selection": "mean of " + ", ".join(members), "members": list(members)}
            for r in out]


def with_late_fusion(collected: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """`collected` with the late-fusion system added when its members are all there and
    scored the same utterances (else a warning names why, and the rest stands)."""
    try:
        fused = late_fusion_folds(collected)
    except ValueError as e:  # e.g. openSMILE could not describe a file the CNN scored
        log.warning("no %s row: %s", NAME, e)
        return collected
    return {**collected, NAME: fused} if fused else collected


def collect_systems(workdir) -> dict[str, list[dict]]:
    """Every finished fold under `workdir` by variant (`collect`), with the late fusion."""
    return with_late_fusion(collect(workdir))
