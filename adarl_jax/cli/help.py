"""What `adarl-jax --help` and each command's `--help` say: one purpose line, a description
of what the command does and writes, and a first example per command, as data.

The parser (adarl_jax.cli.parser) reads these; keeping the prose here keeps the parser's
definitions short enough to read as a table of flags.
"""

from __future__ import annotations

DEFAULT_CONFIG = "quick"
MAIN_EXAMPLE = "adarl-jax reproduce --data ../shared/data/emodb --workdir runs/quick"

TOP = f"""\
ADARL (Fan et al., Interspeech 2020: speech emotion recognition with a domain-aware attention)
in JAX: leave-one-speaker-out (LOSO) training and testing on a corpus, then inference with the
trained fold models.

Start here: the three variants over all LOSO folds of EmoDB, the openSMILE + SVM baselines,
then the comparison report (minutes on a laptop CPU):
  {MAIN_EXAMPLE}
"""

TOP_EPILOG = f"""\
Each command's own help (what it writes, an example, its flags): adarl-jax COMMAND --help.
Configs: commands that read one default to --config {DEFAULT_CONFIG} (tune: its grid's); override
any field with --config.section.field=value or --config.section.field value.
Exit codes: 0 done, 1 unexpected error (--debug shows the traceback), 2 bad input (arguments,
config, corpus, a missing input file; predict: every input failed), 3 training diverged,
4 a file cannot be written or read for want of permission or space, 5 another run holds the
fold, 6 a corrupt checkpoint.
"""

# name: (purpose for the command list, description, example)
COMMANDS = {
    "reproduce": (
        "the main job: 3 variants x all LOSO folds, baselines, report",
        "Trains and tests the paper's three variants (backbone, domain_invariant, adarl) on every\n"
        "leave-one-speaker-out fold, runs the openSMILE + linear SVM baselines over the same folds,\n"
        "then merges everything into WORKDIR/results.json and WORKDIR/report.md (with paired\n"
        "statistics and figures; not with --no-report). Writes one folder per variant and fold (checkpoints,\n"
        "metrics.jsonl, result.json). Rerunning resumes: finished folds are skipped.",
        MAIN_EXAMPLE),
    "train": (
        "LOSO training and testing of one variant, then the report",
        "Trains and tests one variant (config.model.variant, or --variant) on the chosen\n"
        "leave-one-speaker-out folds (default all) and writes WORKDIR/VARIANT/fold_NN_SPEAKER/\n"
        "(checkpoints, metrics.jsonl, result.json), then WORKDIR/results.json and report.md\n"
        "(not with --no-report).\n"
        "Rerunning resumes; --folds lets folds run on different machines into one workdir.\n"
        "With --final, once every fold is done, one model to ship is trained on every speaker\n"
        "for the median of the folds' selected epochs: WORKDIR/final/VARIANT/ with params.npz,\n"
        "config.json, model.json and the model card MODEL.md (Predictor.load, predict --model).",
        "adarl-jax train --data ../shared/data/emodb --workdir runs/adarl --variant adarl --folds 0,3\n"
        "  adarl-jax train --data ../shared/data/emodb --workdir runs/adarl --variant adarl --final"),
    "report": (
        "merge a workdir's finished folds: results.json, report.md",
        "Reads every finished fold under WORKDIR (whatever machine trained it) and writes\n"
        "WORKDIR/results.json, WORKDIR/report.md and, unless --no-figures, the PNGs (confusion\n"
        "matrices, t-SNE) beside them.",
        "adarl-jax report --workdir runs/quick"),
    "analyze": (
        "what the domain-aware attention does: diagnostics and interventions",
        "Reads every fold model of a variant with a domain-aware attention (adarl by default)\n"
        "and records its attention vector I^D on the test, validation and a sample of training\n"
        "utterances; relabels each test speaker with I^D replaced by its training mean, by the\n"
        "other gender's mean and by 1 (no retraining). Writes WORKDIR/VARIANT/attention.json\n"
        "and WORKDIR/attention_VARIANT.md (per-row statistics by gender and class, between-\n"
        "against within-utterance variance, the gender AUC of I^D, the interventions' UA with\n"
        "paired differences per test speaker).",
        "adarl-jax analyze --workdir runs/quick --variant adarl"),
    "tune": (
        "nested recipe selection over a grid of candidate configs",
        "Trains every candidate of a grid on every requested fold, chooses per fold the candidate\n"
        "with the best validation UA (validation speakers drawn from the fold's training\n"
        "speakers) and tests it on the fold's held-out speaker. Writes WORKDIR/CANDIDATE/...,\n"
        "WORKDIR/tune.json and WORKDIR/tune.md. Resumable like train.",
        "adarl-jax tune --grid recipe --corpus csv --manifest my_corpus.csv --workdir runs/tune"),
    "seeds": (
        "mean ± std over workdirs that differ only in the seed",
        "Reads the finished folds of each workdir (runs that differ only in train.seed, on the\n"
        "folds all of them finished) and writes each variant's mean ± standard deviation, the\n"
        "adarl - backbone difference and the seed ensemble to --out (markdown) and a .json beside.",
        "adarl-jax seeds runs/seed_0 runs/seed_1 runs/seed_2 --out runs/seeds.md"),
    "contrast": (
        "a paired contrast of two variants over seeds and corpora (pre-registered tests)",
        "Reads workdirs that each hold both variants' finished folds (one seed of one corpus a\n"
        "workdir), groups them by the corpus they read, and tests A - B in UA per test speaker\n"
        "(averaged over seeds; every speaker of every corpus one vote): mean, t-interval,\n"
        "bootstrap interval within corpora, sign-flip p, minimum detectable effect, verdict.\n"
        "Writes --out (markdown) and a .json beside.",
        "adarl-jax contrast adarl adarl_no_domain_loss runs/emodb-s* runs/ravdess-s* --out runs/contrast.md"),
    "predict": (
        "class probabilities of audio files with a trained model",
        "Runs a model over audio files, folders (searched recursively), .txt lists of paths or\n"
        ".csv files (path[,speaker]) and writes one row per input to --out (.csv, .json, or\n"
        "CSV on stdout): path, emotion, p_<class>..., duration_s, segments, speaker, speaker_s,\n"
        "error, warning (--timeline: also a row per segment). The model: --model FOLDER (train\n"
        "--final), --checkpoint WORKDIR (a LOSO fold), or by default the one shipped in the\n"
        "package (trained on EmoDB). A model of the default recipe standardises each input with\n"
        "its speaker's statistics: --speaker-from says who speaks (default: each file alone,\n"
        "so a file's output never depends on the other inputs). The warning column flags what\n"
        "the model cannot read as trained: silent, truncated, shorter than the 1 s minimum\n"
        "segment (padded), band-limited (a low sample rate), repeated, or too little speaker\n"
        "audio. A failed input gets an error row; the exit code is 2 only when every input\n"
        "failed (a missing file included).",
        "adarl-jax predict clip.wav\n"
        "  adarl-jax predict --model runs/adarl/final/adarl --speaker-from folder clips/ --out preds.csv"),
    "export": (
        "write a jax.export artifact of a trained model",
        "Serialises a trained fold model with jax.export to --out (batch size symbolic, lowered\n"
        "for --platforms) and writes OUT.json beside it: the classes, the input's shape, the\n"
        "front end and the checkpoint it came from. Running it needs jax only, not this package.\n"
        "The config is the one the model was trained with (saved in the checkpoint's workdir).",
        "adarl-jax export --checkpoint runs/quick --fold 0 --out model.jax"),
    "prepare": (
        "compute and cache the spectrogram segments of a corpus",
        "Reads the corpus, computes the front end's spectrogram segments and caches them in\n"
        "WORKDIR/cache/ (train, reproduce and tune reuse the cache of the same front end).\n"
        "Prints a summary (utterances, segments, skipped files, cache size) as JSON.",
        "adarl-jax prepare --data ../shared/data/emodb --workdir runs/quick"),
    "features": (
        "write the model's input for wav files as a .npy array",
        "Cuts each wav file into the config's segments and writes the front end's output, what\n"
        "the model sees, to --out as one float32 (segments, freq, time, 3) array, the files'\n"
        "segments in order. With frontend.normalize='speaker' (the default config) each file is\n"
        "standardised with its own statistics, as predict does by default (--speaker-from call:\n"
        "all files as one speaker; --raw: the values before that standardisation).",
        "adarl-jax features ../shared/data/emodb/wav/03a01Fa.wav --out x.npy"),
}

CONFIG_HELP = ("a config name ({names}), a .py config file, or a run's saved WORKDIR/config.json "
               "(default: {default})")

OVERRIDES = f"""\
config: --config NAME|FILE.py|WORKDIR/config.json, default: {{default}}.
  Override any field: --config.section.field=value or --config.section.field value
  (the value is a Python literal and keeps the field's type), e.g.
    --config.optim.epochs=5 --config.train.seed 1 --config.model.variant backbone
"""


def epilog(name: str, default_config: str | None) -> str:
    """The text under a command's flags: its example, then (for commands that read a config)
    the config it defaults to and the override syntax."""
    text = f"example:\n  {COMMANDS[name][2]}\n"
    if default_config is not None:
        text += "\n" + OVERRIDES.format(default=default_config)
    return text
