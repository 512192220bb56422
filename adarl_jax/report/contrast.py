"""One pre-registered contrast of two variants over seeds and corpora: is A better than B?

  adarl-jax contrast adarl adarl_no_domain_loss runs/emodb-s* runs/ravdess-s* --out runs/contrast.md

Each workdir is one seed of one corpus and holds both variants' folds (a variant's folder may
be a link to another workdir's, e.g. a seed run earlier). Workdirs are grouped by the corpus
they read (`config.data.dir`); inside a corpus the unit is the test speaker,
d_s = mean over the corpus's seeds of UA_A(s) - UA_B(s), and every speaker of every corpus is
one vote in the pooled estimate (EmoDB's 10 and ravdess-dev's 12 give 22). Reported, pooled and
per corpus:
- the mean of d_s;
- a t-interval (n - 1 degrees of freedom) over the d_s;
- a percentile bootstrap interval that resamples speakers, and seeds, within each corpus;
- a two-sided sign-flip p-value: each d_s keeps or flips its sign (a flip is within its corpus
  by construction), exact up to 16 speakers, else 20,000 random patterns;
- the minimum detectable effect at 80% power, (t_0.975 + t_0.80) sd / sqrt(n), for the next
  run's planning;
- the verdict: 'A helps' if the t-interval lies above 0, 'A hurts' if below, else no effect
  shown, with the effects the interval excludes.

With `--versus WORKDIR...` (the same variants under a second condition, e.g. another
normalisation), the unit is the interaction: d_s under the first workdirs minus d_s under the
second, each seed (`train.seed`) paired with the same seed; "A helps" then reads "A's gain is
larger under the first".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats

from adarl_jax.report.paired import _sign_flip_p, bootstrap_means, speaker_ua
from adarl_jax.report.report import summarize
from adarl_jax.workdir.files import write_json_atomic, write_text_atomic
from adarl_jax.report.late_fusion import collect_systems

__all__ = ["corpus_differences", "interaction_differences", "stratified_contrast", "contrast_workdirs", "contrast_markdown",
           "write_contrast_report"]


def _corpus_of(workdir) -> str:
    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{workdir}: no config.json (not a workdir of `reproduce`)")
    data = json.loads(path.read_text())["data"]
    return Path(data["dir"]).name or data.get("corpus", "corpus")


def corpus_differences(a: str, b: str, workdirs) -> dict[str, dict]:
    """{corpus: {'speakers': [...], 'd': (seeds, speakers) UA_A - UA_B, 'workdirs': [...]}} over
    the workdirs that hold both variants; speakers every one of a corpus's seeds tested."""
    grouped: dict[str, list[tuple[str, dict, dict]]] = {}
    for w in workdirs:
        runs = collect_systems(w)
        if a in runs and b in runs:
            grouped.setdefault(_corpus_of(w), []).append(
                (str(w), speaker_ua(summarize(runs[a])), speaker_ua(summarize(runs[b]))))
    if not grouped:
        raise FileNotFoundError(f"no workdir holds finished folds of both {a} and {b}: "
                                f"{', '.join(str(w) for w in workdirs)}")
    out = {}
    for corpus, seeds in grouped.items():
        speakers = sorted(set.intersection(*(set(x) & set(y) for _, x, y in seeds)))
        d = np.array([[x[s] - y[s] for s in speakers] for _, x, y in seeds])
        out[corpus] = {"speakers": speakers, "d": d, "workdirs": [w for w, _, _ in seeds]}
    return out


def _t_stats(per_speaker: np.ndarray) -> dict:
    n = len(per_speaker)
    mean = float(per_speaker.mean())
    if n < 2:
        return {"mean": mean, "t_ci95": [mean, mean], "sd": 0.0, "mde80": float("nan")}
    sd = float(per_speaker.std(ddof=1))
    se = sd / np.sqrt(n)
    half = float(stats.t.ppf(0.975, n - 1)) * se
    mde = float(stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.80, n - 1)) * se
    return {"mean": mean, "t_ci95": [mean - half, mean + half], "sd": sd, "mde80": mde}


def stratified_contrast(groups: dict[str, np.ndarray], seed: int = 0) -> dict:
    """Statistics of `groups` ({stratum: (seeds, speakers) differences}); see the module doc."""
    per_speaker = np.concatenate([d.mean(0) for d in groups.values()])
    rng = np.random.default_rng(seed)
    # the pooled mean is the speaker-weighted sum of the strata's means, each resampled alone
    boot = sum(bootstrap_means(d, rng) * d.shape[1] for d in groups.values()) / len(per_speaker)
    out = _t_stats(per_speaker)
    out.update({"boot_ci95": [float(x) for x in np.percentile(boot, [2.5, 97.5])],
                "p_sign_flip": _sign_flip_p(per_speaker, rng),
                "n_speakers": int(len(per_speaker)),
                "n_seeds": {g: int(d.shape[0]) for g, d in groups.items()},
                "speakers_better": int(np.sum(per_speaker > 0)),
                "speakers_worse": int(np.sum(per_speaker < 0))})
    lo, hi = out["t_ci95"]
    out["verdict"] = ("A helps" if lo > 0 else "A hurts" if hi < 0 else
                      f"no effect shown: effects below {lo:+.3f} and above {hi:+.3f} are excluded")
    return out


def _seed_of(workdir) -> int:
    return int(json.loads((Path(workdir) / "config.json").read_text())["train"]["seed"])


def _by_seed(corpus: str, g: dict) -> dict[int, int]:
    """{train.seed: row of g['d']}; two workdirs of one seed are refused."""
    seeds = [_seed_of(w) for w in g["workdirs"]]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{corpus}: two workdirs of one seed ({seeds}); one per seed")
    return {s: k for k, s in enumerate(seeds)}


def interaction_differences(a: str, b: str, workdirs, versus) -> dict[str, dict]:
    """`corpus_differences` of (A - B in `workdirs`) - (A - B in `versus`): the same contrast
    under two conditions (e.g. two normalisations), per corpus over the speakers both tested,
    each seed (`train.seed` of the workdir's config) paired with the same seed; each corpus
    needs the same seeds finished under both."""
    one, two = corpus_differences(a, b, workdirs), corpus_differences(a, b, versus)
    out = {}
    for corpus in sorted(set(one) & set(two)):
        x, y = one[corpus], two[corpus]
        sx, sy = _by_seed(corpus, x), _by_seed(corpus, y)
        if set(sx) != set(sy):
            raise ValueError(f"{corpus}: seeds {sorted(sx)} against {sorted(sy)} in --versus "
                             "(workdirs without both variants' folds are left out); give each "
                             "condition the same seeds")
        seeds = sorted(sx)
        speakers = [s for s in x["speakers"] if s in y["speakers"]]
        dx, dy = (g["d"][[rows[s] for s in seeds]][:, [g["speakers"].index(p) for p in speakers]]
                  for g, rows in ((x, sx), (y, sy)))
        out[corpus] = {"speakers": speakers, "d": dx - dy,
                       "workdirs": x["workdirs"] + y["workdirs"]}
    if not out:
        raise FileNotFoundError(f"no corpus has finished folds of {a} and {b} under both "
                                "conditions")
    return out


def contrast_workdirs(a: str, b: str, workdirs, seed: int = 0, versus=None) -> dict:
    """{'a', 'b', 'pooled': stratified_contrast, 'corpora': {corpus: ... + per-speaker d}}; with
    `versus` (workdirs of a second condition), of the interaction instead."""
    groups = (interaction_differences(a, b, workdirs, versus) if versus
              else corpus_differences(a, b, workdirs))
    corpora = {}
    for corpus, g in groups.items():
        c = stratified_contrast({corpus: g["d"]}, seed)
        c["per_speaker"] = {s: round(float(x), 4) for s, x in zip(g["speakers"], g["d"].mean(0))}
        c["workdirs"] = g["workdirs"]
        corpora[corpus] = c
    return {"a": a, "b": b, "versus": bool(versus),
            "pooled": stratified_contrast({k: g["d"] for k, g in groups.items()}, seed),
            "corpora": corpora}


def _row(name: str, c: dict) -> str:
    seeds = ", ".join(str(k) for k in c["n_seeds"].values())
    return (f"| {name} | {seeds} | {c['n_speakers']} | {c['mean']:+.3f} | "
            f"[{c['t_ci95'][0]:+.3f}, {c['t_ci95'][1]:+.3f}] | "
            f"[{c['boot_ci95'][0]:+.3f}, {c['boot_ci95'][1]:+.3f}] | {c['p_sign_flip']:.3f} | "
            f"{c['speakers_better']} / {c['speakers_worse']} | {c['mde80']:.3f} |")


def contrast_markdown(result: dict) -> str:
    a, b, pooled = result["a"], result["b"], result["pooled"]
    what = ("d_s = UA_A - UA_B of test speaker s, averaged over the seeds; each speaker one vote. "
            if not result.get("versus") else
            "d_s = (UA_A - UA_B) in the workdirs minus (UA_A - UA_B) in the --versus workdirs, "
            "of test speaker s (each seed paired with the same seed), averaged over the seeds; each "
            "speaker one vote. ")
    lines = [f"# {a} vs {b}" + (": the interaction with a second condition"
                                if result.get("versus") else ""), "",
             what +
             "95% t-interval over the d_s, 95% bootstrap interval (speakers and seeds resampled "
             "within each corpus), two-sided sign-flip p, speakers better / worse, minimum "
             "detectable effect at 80% power.", "",
             "| corpus | seeds | speakers | mean d | t-interval | bootstrap interval | p (sign flip) "
             "| better / worse | MDE (80%) |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(k, c) for k, c in result["corpora"].items()]
    if len(result["corpora"]) > 1:
        lines.append(_row("pooled", pooled))
    lines += ["", f"Verdict ({a} - {b}, pooled t-interval): {pooled['verdict']}.", ""]
    return "\n".join(lines)


def write_contrast_report(a: str, b: str, workdirs, out, versus=None) -> dict:
    """Writes `out` (markdown) and the result as JSON beside it (`.json`)."""
    result = contrast_workdirs(a, b, workdirs, versus=versus)
    out = Path(out)
    write_text_atomic(out, contrast_markdown(result))
    write_json_atomic(out.with_suffix(".json"), result)
    return result
