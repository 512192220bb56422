"""Paired comparisons of two systems over the same LOSO folds: is A better than B?

The unit is the test speaker: both systems were tested on the same speakers, so the question
is asked of the per-speaker UA differences d_s = UA_A(s) - UA_B(s) (and, with several seeds
of each, d_{k,s} for seed k). Reported:
- the mean difference;
- a 95% percentile bootstrap interval, resampling speakers (and, with seeds, seeds too,
  independently) with replacement;
- a two-sided sign-flip (paired permutation) p-value on the per-speaker differences (averaged
  over seeds first): under "no difference" each d_s is as likely to be -d_s. Exact over all
  2^n sign patterns up to 16 speakers, else 20,000 random patterns.
Speakers are few (10 in EmoDB), so intervals are wide; that is the honest answer.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["paired_comparison", "speaker_ua", "paired_table"]

N_BOOT = 10_000
N_FLIPS = 20_000
EXACT_UP_TO = 16


def speaker_ua(summary: dict) -> dict[str, float]:
    """{test speaker: UA} from a `report.summarize` record."""
    return {f["speaker"]: float(f["ua"]) for f in summary["folds"]}


def _sign_flip_p(d: np.ndarray, rng) -> float:
    observed = abs(d.mean())
    n = len(d)
    if n <= EXACT_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = rng.choice((1.0, -1.0), size=(N_FLIPS, n))
    means = np.abs(signs @ d / n)
    return float(np.mean(means >= observed - 1e-12))


def bootstrap_means(d: np.ndarray, rng) -> np.ndarray:
    """(N_BOOT,) means of `d` (seeds, speakers) resampled with replacement, speakers and seeds
    independently (speakers drawn first, from `rng`)."""
    k, n = d.shape
    si = rng.integers(0, n, size=(N_BOOT, n))
    ki = rng.integers(0, k, size=(N_BOOT, k))
    return np.array([d[np.ix_(ki[i], si[i])].mean() for i in range(N_BOOT)])


def paired_comparison(a, b, seed: int = 0) -> dict:
    """A vs B. `a`, `b`: {speaker: UA} for one seed each, or lists of such dicts (one per
    seed, paired by position: the same seed index is one paired run). Only speakers present
    in every dict are compared."""
    a = [a] if isinstance(a, dict) else list(a)
    b = [b] if isinstance(b, dict) else list(b)
    if len(a) != len(b) or not a:
        raise ValueError(f"paired comparison needs as many runs of A as of B (got {len(a)}, {len(b)})")
    speakers = sorted(set.intersection(*(set(x) for x in a + b)))
    if not speakers:
        raise ValueError("the two systems share no test speaker")
    d = np.array([[ra[s] - rb[s] for s in speakers] for ra, rb in zip(a, b)])  # (seeds, speakers)
    rng = np.random.default_rng(seed)
    k, n = d.shape
    lo, hi = np.percentile(bootstrap_means(d, rng), [2.5, 97.5])
    per_speaker = d.mean(0)
    return {"mean": float(d.mean()), "ci95": [float(lo), float(hi)],
            "p_sign_flip": _sign_flip_p(per_speaker, rng),
            "n_speakers": n, "n_seeds": k,
            "speakers_better": int(np.sum(per_speaker > 0)), "speakers_worse": int(np.sum(per_speaker < 0)),
            "per_speaker": {s: round(float(x), 4) for s, x in zip(speakers, per_speaker)}}


CONTROL = "adarl_no_domain_loss"


def comparisons(variants) -> list[tuple[str, str]]:
    """(A, B) pairs to report: every variant against backbone, and against the lambda_1 = 0
    control when it ran."""
    pairs = [(v, "backbone") for v in variants if v != "backbone" and "backbone" in variants]
    if CONTROL in variants:
        pairs += [(v, CONTROL) for v in variants if v not in (CONTROL, "backbone")]
    return [p for p in pairs if p[0] in variants]


def paired_table(per_variant: dict[str, list[dict]]) -> dict:
    """{'A vs B': paired_comparison} for `comparisons`; per_variant: {variant: [{speaker: UA}
    a seed]} (seeds in the same order for every variant)."""
    out = {}
    for a, b in comparisons(list(per_variant)):
        n = min(len(per_variant[a]), len(per_variant[b]))
        out[f"{a} vs {b}"] = paired_comparison(per_variant[a][:n], per_variant[b][:n])
    return out


def paired_markdown(table: dict) -> list[str]:
    if not table:
        return []
    lines = ["", "## Paired comparisons (UA, per test speaker)", "",
             "Difference A - B in UA on the same test speakers: mean, 95% bootstrap interval "
             "over speakers (and seeds), two-sided sign-flip p-value, speakers better / worse.", "",
             "| A vs B | seeds | speakers | mean UA difference | 95% interval | p (sign flip) | better / worse |",
             "|---|---|---|---|---|---|---|"]
    for name, c in table.items():
        lines.append(f"| {name} | {c['n_seeds']} | {c['n_speakers']} | {c['mean']:+.3f} | "
                     f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] | {c['p_sign_flip']:.3f} | "
                     f"{c['speakers_better']} / {c['speakers_worse']} |")
    return lines
