"""MODEL.md, the model card of a final model: what it is, what it was trained on, how the
recipe scored under leave-one-speaker-out, what it is for, its limits and the data's licence.

The LOSO figures come from the folds' result records through adarl_jax.report.report (pooled WA/UA
over every test utterance; mean and sample standard deviation of the per-fold UA); they
measure the recipe on unseen speakers, never the final model itself, which has seen every
speaker of the corpus.
"""

from __future__ import annotations

from pathlib import Path

from adarl_jax.report.report import statistics_markdown, summarize
from adarl_jax.report.seeds import mean_std

__all__ = ["corpus_licence", "model_card"]

LANGUAGES = {"emodb": "German", "ravdess": "English (North American)", "iemocap": "English"}
LICENCE_FILES = ("SOURCE.md", "LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "README.md",
                 "README")
_LICENCE_WORDS = ("licen", "terms of use")


def _section(text: str) -> str | None:
    """The markdown section whose heading names a licence or terms of use (None if none)."""
    lines, out = text.splitlines(), None
    for line in lines:
        heading = line.lstrip().startswith("#")
        if heading and out is not None:
            break
        if heading and any(w in line.lower() for w in _LICENCE_WORDS):
            out = []
        elif out is not None:
            out.append(line)
    if out is None:
        return None
    return "\n".join(out).strip() or None


def corpus_licence(folder) -> str:
    """The licence of the corpus in `folder`, quoted from its SOURCE.md, LICENSE or README
    (a licence section of a markdown file; a LICENSE file whole, up to 40 lines)."""
    folder = Path(folder)
    for name in LICENCE_FILES:
        path = folder / name
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if name.upper().startswith("LICEN"):
            return f"From `{path}`:\n\n" + "\n".join(text.strip().splitlines()[:40])
        section = _section(text)
        if section:
            return f"From `{path}`:\n\n{section}"
    return f"unknown: check the corpus's licence (nothing found in {folder})"


def _num(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _row(name: str, fold_results: list[dict]) -> str:
    s = summarize(fold_results)
    ua = mean_std([f["ua"] for f in s["folds"]])
    return (f"| {name} | {len(s['folds'])} | {_num(s['wa_pooled'])} | {_num(s['ua_pooled'])} | "
            f"{ua['mean']:.3f} ± {ua['std']:.3f} |")


def _every(inp: dict) -> str:
    """'one every H s ' for overlapping segments, and the silence trim; '' for neither."""
    hop, trim = float(inp.get("segment_hop_s", 0.0)), float(inp.get("trim_db", 0.0))
    level = float(inp.get("level_dbfs", 0.0))
    return ((f"one every {hop:g} s " if hop and hop != float(inp["segment_s"]) else "")
            + (f"after trimming the silence more than {trim:g} dB below the loudest frame "
               "at both ends " if trim else "")
            + (f"with each recording scaled to an RMS level of {level:g} dBFS " if level else ""))


def _evaluation(m: dict, loso_results: list[dict], baselines: dict | None) -> list[str]:
    lines = ["## Evaluation (leave-one-speaker-out)", "",
             f"The recipe of this model, trained {len(loso_results)} times, each time without one "
             f"speaker and tested on that speaker (run in `{m.get('loso_workdir', '?')}`). "
             "WA: accuracy over utterances; UA: mean per-class recall; pooled over every test "
             "utterance, and per fold (mean ± sample sd over the test speakers).", "",
             "| system | folds | WA pooled | UA pooled | UA per fold (mean ± sd) |",
             "|---|---|---|---|---|", _row(f"**{m['variant']}** (this recipe)", loso_results)]
    lines += [_row(v, rs) for v, rs in sorted((baselines or {}).items()) if rs]
    lines += ["", "| fold | test speaker | WA | UA | epochs kept |", "|---|---|---|---|---|"]
    kept = {f["fold"]: f["epochs_kept"] for f in m["epochs"]["per_fold"]}
    for f in summarize(loso_results)["folds"]:
        lines.append(f"| {f['fold']} | {f['speaker']} | {_num(f['wa'])} | {_num(f['ua'])} | "
                     f"{kept.get(f['fold'], '-')} |")
    # what a user gets with fewer of a speaker's recordings than a LOSO test speaker has
    lines += statistics_markdown({m["variant"]: summarize(loso_results),
                                  **{v: summarize(rs) for v, rs in sorted((baselines or {}).items()) if rs}})
    return lines


def _fusion_lines(fusion: dict | None, scored: bool) -> list[str]:
    """The late fusion's members, when the folder holds one (adarl_jax.inference.late_fusion);
    `scored`: the LOSO run has the fused system's row."""
    if not fusion:
        return []
    svms = "; ".join(f"{fs}: C {fit['C']:g} by {fit['c_select']}"
                     + (f" (global: C {fit['global_C']:g})" if "global_C" in fit else "")
                     + f", {fit['n_fit']} utterances" for fs, fit in fusion["svms"].items())
    row = ("Its LOSO figures are the `adarl_late_fusion` row below, each test speaker "
           "standardised with its own statistics; " if scored else
           "The LOSO run has no `adarl_late_fusion` row (its per-speaker baselines did not run), "
           "so the fusion is not scored here; ")
    pairs = ("a linear SVM on each recording's openSMILE " if "global_below" not in fusion else
             "two linear SVMs (per-speaker and globally standardised) on each recording's openSMILE ")
    return [f"- A late fusion: this CNN and {pairs}"
            f"{' and '.join(fusion['functionals'])} functionals ({svms}); "
            f"{fusion['combination']}; {fusion['normalisation']}. {row}under `predict`'s "
            "default (`--speaker-from training`) this folder is not measured (RESULTS.md has "
            "the LOSO fold models under it). Predicting needs openSMILE (`[baselines]`)."]


def model_card(model_json: dict, loso_results: list[dict], baselines: dict | None = None) -> str:
    """MODEL.md from the model record (model.json), the variant's LOSO fold results and, when
    given, {name: fold results} of the systems to show beside it (other variants, baselines)."""
    m, t, inp = model_json, model_json["training"], model_json["input"]
    fe = inp["frontend"]
    corpus = m["corpus"]
    language = LANGUAGES.get(corpus["name"], "not recorded: check the corpus")
    per_class = ", ".join(f"{c} {n}" for c, n in t["utterances_per_class"].items())
    e = m["epochs"]
    lines = [
        f"# {m['variant']}: speech emotion recognition ({', '.join(m['classes'])})", "",
        "## Model", "",
        f"- Variant `{m['variant']}` of adarl-jax {m['adarl_jax_version']} (ADARL, Fan et al., "
        f"Interspeech 2020), {m['parameters']:,} trainable parameters; created {m['created']}.",
        f"- Output: probabilities of {', '.join(m['classes'])}; domain labels "
        f"{', '.join(m['domains'])}.",
        f"- Input: mono audio at {inp['sample_rate']} Hz, cut into {inp['segment_s']:g} s segments "
        f"{_every(inp)}(a last one of at least {inp['min_tail_s']:g} s kept); front end `{fe['kind']}`, "
        f"{fe['scale']} scale, hop {fe['hop_s']} s, n_fft {fe['n_fft']}, spectrogram "
        f"{' x '.join(map(str, inp['shape']))}, normalised per {fe['normalize']}. An utterance's "
        "probabilities are the mean of its segments'.",
        f"- Epochs: {e['epochs']} ({e['rule']}; per fold: "
        + ", ".join(f"{f['test_speaker']} {f['epochs_kept']}" for f in e["per_fold"])
        + f"; median {e['median']:g}); {e['schedule']}.",
        "", "## Training data", "",
        f"- Corpus `{corpus['name']}` in `{corpus['folder']}`, language: {language}.",
        f"- {len(t['speakers'])} speakers, all used for training: {', '.join(t['speakers'])}.",
        f"- {t['utterances']} utterances: {per_class}"
        + (f", {t['unlabelled_utterances']} without an emotion of these classes (domain "
           "only)" if t["unlabelled_utterances"] else "") + ".",
        (f"- {t['steps']} training steps, seed {t['seed']}; no validation or test data." if not
         m.get("ensemble") else
         f"- A seed ensemble of {m['ensemble']['members']} models (seeds "
         f"{', '.join(map(str, m['ensemble']['seeds']))}), each {t['steps']} training steps on "
         f"these data; {m['ensemble']['combination']}. No validation or test data."),
        *_fusion_lines(m.get("late_fusion"), "adarl_late_fusion" in (baselines or {})), "",
        *_evaluation(m, loso_results, baselines), "",
        "## Intended use", "",
        "Research on speech emotion recognition, and a starting point for models fitted to "
        "your own data: the emotion of short utterances of one speaker, in the corpus's "
        "language and recording conditions. Not for decisions about people.", "",
        "## Known limits", "",
        "- Trained on acted speech: actors portraying emotions, which is more intense and "
        "more prototypical than spontaneous speech.",
        f"- One corpus language ({language}); other languages and accents are not tested.",
        f"- A small number of speakers ({len(t['speakers'])}): speaker, microphone and room "
        "differences beyond theirs are not covered.",
        "- The LOSO figures above measure the recipe on speakers it never heard; this model "
        "has heard every speaker of the corpus, and its own accuracy on new speakers is not "
        "measured (expect it near the LOSO figures, not above them).", "",
        "## Licence of the training data", "", corpus_licence(corpus["folder"]), ""]
    return "\n".join(lines)
