"""What the domain-aware attention (Eq. 4-5) does after training, from the saved fold models.

`adarl-jax analyze --workdir W` reads every fold model of a variant with a domain pathway
(any module whose attention comes from a module with `produces_attention = True`, e.g.
`DomainAwareAttention`) and, for each fold:

- records I^D, the attention vector, of its test and validation utterances and of a sample
  of its training utterances (per utterance: the mean over its segments, and the variance
  over its segments);
- relabels the test speaker with I^D replaced (test-time interventions, no retraining):
  `train_mean` (the training sample's mean vector), `other_gender` (the mean vector of the
  other domain value's training utterances), `ones` (a constant 1: no attention).

Then, pooled over folds: per row the mean and sd of I^D by domain value and by class; the
variance of I^D between utterances against its spread within an utterance; how well I^D alone
separates the domain values (Fisher's linear discriminant fitted on each fold's training
sample, its test projection standardised by the training one, rank AUC over the pooled test
utterances); and each intervention's UA with its paired difference from the model's own
attention per test speaker (adarl_jax.report.paired). A constant vector is absorbed by the channel-wise
FC in principle (Sec. 2.2), so only I^D's variation between inputs can matter: if replacing it
by its mean changes nothing, the attention is inert in this model, and the report says so.

The replacement is done with `flax.linen.intercept_methods` around the trained model's own
`apply`: the model code is not touched, so a fork's variant is analysed as it trained.
"""

from __future__ import annotations

from pathlib import Path

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from scipy.stats import rankdata

from adarl_jax import metrics
from adarl_jax.workdir.files import write_json_atomic, write_text_atomic
from adarl_jax.inference.fold_models import find_fold, restore_variables
from adarl_jax.data.folds import config_folds
from adarl_jax.data.functionals import attach_functionals, segment_functionals
from adarl_jax.data.reading import load_dataset
from adarl_jax.train import sharding
from adarl_jax.train.forward import BatchedInference
from adarl_jax.model import build_model
from adarl_jax.report.paired import paired_comparison
from adarl_jax.report import figures

__all__ = ["AttentionReplaced", "analyze_fold", "summarize_folds", "analyze_workdir"]

INTERVENTIONS = ("train_mean", "other_gender", "ones")
REPLACEMENT = "attention_replacement"  # the variables entry AttentionReplaced reads


class AttentionReplaced:
    """`model` whose attention modules' outputs (a module class with `produces_attention =
    True`, e.g. DomainAwareAttention) are replaced by `variables[REPLACEMENT]` ((H,), broadcast
    over the batch): a drop-in for `model` in `BatchedInference`."""

    def __init__(self, model):
        self.model = model

    def apply(self, variables, x, train: bool = False, **inputs):
        variables = dict(variables)
        replacement = variables.pop(REPLACEMENT)

        replaced = []

        def intercept(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            if getattr(context.module, "produces_attention", False) and context.method_name == "__call__":
                replaced.append(type(context.module).__name__)
                return jnp.broadcast_to(replacement, out.shape).astype(out.dtype)
            return out

        with nn.intercept_methods(intercept):
            out = self.model.apply(variables, x, train=train, **inputs)
        if not replaced:  # the interventions would silently change nothing
            raise ValueError(f"{type(self.model).__name__} has no attention module to replace (a "
                             "module class with produces_attention = True, e.g. DomainAwareAttention)")
        return out


def _per_utterance(out: dict, seg_utt: np.ndarray, utts) -> dict:
    """Per utterance of `utts` with segments: mean attention (H), its variance over segments
    (H), its label (metrics.utterance_labels)."""
    att = out["attention"]
    rows = {"utterance": [], "attention": [], "within_var": []}
    for u in utts:
        sel = seg_utt == u
        if not sel.any():
            continue
        rows["utterance"].append(int(u))
        rows["attention"].append(att[sel].mean(0))
        rows["within_var"].append(att[sel].var(0))
    rows["pred"] = metrics.utterance_labels(out["emotion_probs"], seg_utt, rows["utterance"])
    return rows


def analyze_fold(config, variables, dataset, fold, mesh=None, sample: int = 64, seed: int = 0) -> dict:
    """One fold model's attention record and interventions (see the module docstring)."""
    mesh = mesh or sharding.make_mesh()
    model = build_model(config)
    attach_functionals(config, dataset, progress=False)
    batch = int(config.train.eval_batch_size)
    plain = BatchedInference(model, mesh, batch)
    replaced = BatchedInference(AttentionReplaced(model), mesh, batch,
                                functionals=plain.reads_functionals)
    rng = np.random.default_rng([seed, fold.index])
    labelled_train = np.array([u for u in fold.train if dataset.emotion[u] >= 0], np.int64)
    train_sample = np.sort(rng.choice(labelled_train, size=min(sample, len(labelled_train)),
                                      replace=False))
    record = {"fold": fold.index, "test_speaker": fold.test_speaker}
    for split, utts in (("train", train_sample), ("val", np.asarray(fold.val, np.int64)),
                        ("test", np.asarray(fold.test, np.int64))):
        segs = dataset.subset_segments(utts)
        if not len(segs):
            continue
        out = plain(variables, dataset.features[segs], segment_functionals(dataset, segs))
        if "attention" not in out:
            raise ValueError(f"model.variant={config.model.variant!r} returns no 'attention': "
                             "nothing to analyse (a variant with a domain-aware attention is needed)")
        rows = _per_utterance(out, dataset.segment_utt[segs], utts)
        rows["speaker"] = [dataset.utterances[u].speaker for u in rows["utterance"]]
        rows["domain"] = [int(dataset.domain[u]) for u in rows["utterance"]]
        rows["emotion"] = [int(dataset.emotion[u]) for u in rows["utterance"]]
        record[split] = rows
    train_att = np.array(record["train"]["attention"])
    train_dom = np.array(record["train"]["domain"])
    mean = train_att.mean(0)
    by_domain = {int(d): train_att[train_dom == d].mean(0) for d in np.unique(train_dom)}
    test = np.asarray(fold.test, np.int64)
    segs = dataset.subset_segments(test)
    seg_utt = dataset.segment_utt[segs]
    seg_dom = dataset.domain[seg_utt]
    record["interventions"] = {}
    for name in INTERVENTIONS:
        probs = np.zeros((len(segs), len(config.data.classes)), np.float32)
        if name == "other_gender":
            groups = [(seg_dom == d, _other(by_domain, int(d))) for d in np.unique(seg_dom)]
        else:
            groups = [(np.ones(len(segs), bool), mean if name == "train_mean" else np.ones_like(mean))]
        for sel, vector in groups:
            if vector is None or not sel.any():
                continue
            probs[sel] = replaced({**variables, REPLACEMENT: np.asarray(vector, np.float32)},
                                  dataset.features[segs[sel]],
                                  segment_functionals(dataset, segs[sel]))["emotion_probs"]
        record["interventions"][name] = metrics.utterance_labels(probs, seg_utt,
                                                                 test[np.isin(test, seg_utt)])
    record["train_mean"] = mean
    return record


def _other(by_domain: dict, d: int):
    """The mean attention of the domain values other than d (None when there is none)."""
    others = [v for k, v in by_domain.items() if k != d]
    return np.mean(others, axis=0) if others else None


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Rank (Mann-Whitney) AUC of `scores` for the boolean labels `positive`."""
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if not n1 or not n0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _fisher_scores(train_x, train_y, test_x) -> np.ndarray:
    """Test projections on Fisher's discriminant of two classes, standardised by the training ones."""
    a, b = train_x[train_y == 1], train_x[train_y == 0]
    cov = np.cov(np.concatenate([a - a.mean(0), b - b.mean(0)]).T) + 1e-6 * np.eye(train_x.shape[1])
    w = np.linalg.solve(cov, a.mean(0) - b.mean(0))
    ref = train_x @ w
    return (test_x @ w - ref.mean()) / (ref.std() + 1e-12)


def summarize_folds(records: list[dict], classes, domains) -> dict:
    """The pooled diagnostics and interventions of `analyze_fold` records."""
    att = np.concatenate([np.array(r["test"]["attention"]) for r in records])
    within = np.concatenate([np.array(r["test"]["within_var"]) for r in records])
    dom = np.concatenate([r["test"]["domain"] for r in records])
    emo = np.concatenate([r["test"]["emotion"] for r in records])
    k = len(classes)
    out = {
        "rows": int(att.shape[1]), "n_test_utterances": int(len(att)),
        "mean": att.mean(0).tolist(), "sd": att.std(0).tolist(),
        "by_domain": {str(domains[d]): {"mean": att[dom == d].mean(0).tolist(),
                                        "sd": att[dom == d].std(0).tolist(), "n": int((dom == d).sum())}
                      for d in np.unique(dom) if d >= 0},
        "by_class": {classes[c]: {"mean": att[emo == c].mean(0).tolist(),
                                  "sd": att[emo == c].std(0).tolist(), "n": int((emo == c).sum())}
                     for c in np.unique(emo) if c >= 0},
        # between utterances: variance of the per-utterance mean; within: mean variance over
        # an utterance's segments; both averaged over the rows
        "between_var": float(att.var(0).mean()), "within_var": float(within.mean()),
    }
    scores, labels = [], []
    for r in records:
        tx, ty = np.array(r["train"]["attention"]), np.array(r["train"]["domain"])
        if len(np.unique(ty)) == 2:
            scores.append(_fisher_scores(tx, ty == ty.max(), np.array(r["test"]["attention"])))
            labels.append(np.array(r["test"]["domain"]) == ty.max())
    out["domain_auc"] = (_auc(np.concatenate(scores), np.concatenate(labels)) if scores
                         else float("nan"))
    own = {r["test_speaker"]: _ua(r["test"]["emotion"], r["test"]["pred"], k) for r in records}
    out["ua_own_attention"] = _ua(emo, np.concatenate([r["test"]["pred"] for r in records]), k)
    out["interventions"] = {}
    for name in INTERVENTIONS:
        preds = np.concatenate([r["interventions"][name] for r in records])
        per_speaker = {r["test_speaker"]: _ua(r["test"]["emotion"], r["interventions"][name], k)
                       for r in records}
        changed = float(np.mean(preds != np.concatenate([r["test"]["pred"] for r in records])))
        out["interventions"][name] = {"ua": _ua(emo, preds, k), "labels_changed": changed,
                                      "paired": paired_comparison(per_speaker, own)}
    return out


def _ua(y, p, k) -> float:
    y, p = np.asarray(y), np.asarray(p)
    keep = (y >= 0) & (p >= 0)
    return metrics.unweighted_accuracy(y[keep], p[keep], k)


def markdown(variant: str, s: dict) -> list[str]:
    rows = range(s["rows"])
    lines = [f"## {variant}: the domain-aware attention I^D", "",
             f"{s['n_test_utterances']} test utterances over the folds. Between-utterance variance "
             f"of I^D {s['between_var']:.2e}, within-utterance (over segments) {s['within_var']:.2e}; "
             f"domain AUC of I^D alone {s['domain_auc']:.3f}.", "",
             "| group | n | " + " | ".join(f"row {i}" for i in rows) + " |", "|---" * (s["rows"] + 2) + "|"]
    groups = [("all", {"mean": s["mean"], "sd": s["sd"], "n": s["n_test_utterances"]})]
    groups += list(s["by_domain"].items()) + list(s["by_class"].items())
    for name, g in groups:
        lines.append(f"| {name} | {g['n']} | " + " | ".join(
            f"{m:.3f} ± {d:.3f}" for m, d in zip(g["mean"], g["sd"])) + " |")
    lines += ["", f"Test-time interventions (UA with the model's own I^D: {s['ua_own_attention']:.3f}; "
              "paired over test speakers):", "",
              "| I^D replaced by | UA | labels changed | mean UA change | 95% interval | p (sign flip) |",
              "|---|---|---|---|---|---|"]
    for name, i in s["interventions"].items():
        c = i["paired"]
        lines.append(f"| {name} | {i['ua']:.3f} | {i['labels_changed']:.1%} | {c['mean']:+.3f} | "
                     f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] | {c['p_sign_flip']:.3f} |")
    if s["interventions"]["train_mean"]["labels_changed"] == 0:
        lines += ["", "Replacing I^D by its training mean changes no label: the attention is "
                  "mechanically inert in these models."]
    return lines


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def analyze_workdir(workdir, variant: str | None = None, dataset=None,
                    sample: int = 64) -> tuple[Path, dict]:
    """Every fold model of `variant` in `workdir` analysed; writes
    W/<variant>/attention.json and W/attention_<variant>.md; returns (that .md, the summary)."""
    refs = find_fold(workdir, variant, "all")
    variant = refs[0].variant
    records, config = [], None
    for ref in refs:
        config, variables = restore_variables(ref)
        if dataset is None:
            dataset = load_dataset(config, workdir, progress=False)
        fold = config_folds(config, dataset.utterances, str(ref.fold))[0]
        records.append(analyze_fold(config, variables, dataset, fold, sample=sample,
                                    seed=int(config.train.seed)))
    summary = summarize_folds(records, tuple(config.data.classes), tuple(config.data.genders))
    workdir = Path(workdir)
    write_json_atomic(workdir / variant / "attention.json",
                      _jsonable({"summary": summary, "folds": records}))
    lines = ["# Attention analysis", ""] + markdown(variant, summary)
    png = workdir / "figures" / f"attention_{variant}.png"
    try:
        figures.plot_attention_profile([r["test"] for r in records], tuple(config.data.genders), png,
                                       f"{variant}: I^D of the test utterances, per fold model")
        lines += ["", f"![{variant} attention profile](figures/{png.name})"]
    except ImportError as e:  # matplotlib missing: the tables still get written
        lines += ["", f"Figure skipped: {e}."]
    md = workdir / f"attention_{variant}.md"
    write_text_atomic(md, "\n".join(lines) + "\n")
    return md, summary
