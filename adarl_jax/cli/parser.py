"""The `adarl-jax` command line's grammar: one parser per command, each with only the flags
that command reads, and the config overrides (`--config.section.field=value` or
`--config.section.field value`), which argparse cannot express and are split off first.

`parse(argv)` turns a command line into an argparse.Namespace with `command`, the command's
flags, `overrides` (each as `--config.section.field=value`) and `argv` (the command line with
every override in that `=` form: what worker processes rerun). Flags are spelled with dashes;
the underscore spellings of earlier versions (`--num_processes`, `--process_id`,
`--init_timeout`) still parse, hidden from the help.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adarl_jax.cli.help import COMMANDS, CONFIG_HELP, DEFAULT_CONFIG, TOP, TOP_EPILOG, epilog
from adarl_jax.inference.speakers import DEFAULT_SPEAKER_FROM, MIN_SPEAKER_S, SPEAKER_FROM

__all__ = ["build_parser", "parse", "split_overrides", "DEFAULT_CONFIG"]

OVERRIDE_PREFIX = "--config."
TUNE_CONFIG = "the grid's base config (get_grid()['config'])"


def _config_names() -> str:
    folder = Path(__file__).resolve().parent / "configs"
    return ", ".join(sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")))


def _flag(p: argparse.ArgumentParser, name: str, **kw) -> None:
    """`--a-b`, and `--a_b` hidden beside it for command lines written before the rename."""
    p.add_argument(f"--{name}", **kw)
    p.add_argument(f"--{name.replace('-', '_')}", dest=name.replace("-", "_"),
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                   **{k: v for k, v in kw.items() if k not in ("help", "default")})


def _baseline_sets(text: str) -> tuple[str, ...]:
    sets = tuple(s.strip() for s in text.split(",") if s.strip() and s.strip() != "none")
    bad = [s for s in sets if s not in ("egemaps", "compare")]
    if bad:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list of egemaps, compare "
                                         "or 'none'")
    return sets


def _buckets(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(b) for b in text.split(",") if b.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected sizes >= 1 like 1,8,32")
    return sizes


def _fold_arg(text: str):
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a fold index or 'all'") from None


def _command(sub, name: str, config: str | None = None, default=DEFAULT_CONFIG):
    """A command's parser: its purpose, description and example from cli_help; with `config`
    (the default shown), a --config flag (default `default`) and the override syntax."""
    purpose, description, _ = COMMANDS[name]
    p = sub.add_parser(name, help=purpose, description=f"{purpose[0].upper()}{purpose[1:]}.\n\n"
                       f"{description}", epilog=epilog(name, config),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    if config is not None:
        p.add_argument("--config", default=default, metavar="CONFIG",
                       help=CONFIG_HELP.format(names=_config_names(), default=config))
    p.set_defaults(command=name, usage_error=p.error)
    return p


def _corpus_args(p) -> None:
    p.add_argument("--data", default=None, metavar="DIR", help="corpus folder (sets config.data.dir)")
    p.add_argument("--corpus", default=None, choices=("emodb", "ravdess", "iemocap", "csv"),
                   help="the corpus's layout (sets config.data.corpus)")
    p.add_argument("--manifest", default=None, metavar="CSV",
                   help="path,speaker,gender,emotion manifest for --corpus csv")
    p.add_argument("--extra-data", action="append", default=None, metavar="[CORPUS:]PATH",
                   help="another corpus whose every speaker trains in every fold (repeatable; "
                   "sets config.data.extra), e.g. ravdess:DIR, emodb:DIR or a CSV manifest")
    p.add_argument("--test-data", default=None, metavar="[CORPUS:]PATH",
                   help="cross-corpus: train on --data (and --extra-data), test on every "
                   "speaker of this corpus, as one fold (sets config.data.test)")


def _workdir(p, help="the run's folder: cache, fold folders, results") -> None:
    p.add_argument("--workdir", required=True, metavar="WORKDIR", help=help)


def _allow_missing_class(p) -> None:
    p.add_argument("--allow-missing-class", action="store_true",
                   help="train a fold whose training speakers lack a class of data.classes, "
                   "with a warning (sets config.train.allow_missing_class; default: refuse)")


def _force_new_config(p, where="WORKDIR") -> None:
    p.add_argument("--force-new-config", action="store_true",
                   help="the workdir was trained under another config: move what it trained to "
                   f"{where}/superseded-<time>/ and start afresh (default: refuse)")


def _no_progress(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _folds(p) -> None:
    p.add_argument("--folds", default=None, help="fold indices, e.g. 0,3 or 0-4 (default all)")


def _training_args(p) -> None:
    """What train and reproduce share: where, which folds, how many processes."""
    _corpus_args(p)
    _workdir(p)
    _folds(p)
    _no_progress(p)
    _allow_missing_class(p)
    _force_new_config(p)
    p.add_argument("--no-report", action="store_true",
                   help="write no report at the end (results.json, report.md, figures; "
                   "`adarl-jax report WORKDIR` writes it later). The workers of --workers run "
                   "with it: their parent writes the one report once every fold is done")
    p.add_argument("--workers", type=int, default=0,
                   help="fold-training processes on this machine, each pinned to its own cores "
                   "(default 0 = one per core on a CPU-only host, 1 on GPU/TPU)")
    # a worker of --workers: its parent's claims folder (experiments.workers.Claims)
    p.add_argument("--claims", default=None, help=argparse.SUPPRESS)
    p.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="address of process 0 of a multi-process job, or auto (TPU pod, SLURM, MPI)")
    _flag(p, "num-processes", type=int, default=None, metavar="N",
          help="processes in the job (with --coordinator HOST:PORT)")
    _flag(p, "process-id", type=int, default=None, metavar="I",
          help="this process's index, 0 on the coordinator's host")
    _flag(p, "init-timeout", type=int, default=300, metavar="S",
          help="seconds to wait for the coordinator (default %(default)s)")
    p.add_argument("--final", action="store_true",
                   help="after the LOSO folds (resumed: finished ones are skipped), train one "
                   "model per variant on every speaker for the median of the folds' selected "
                   "epochs and write a model folder with its card MODEL.md")
    p.add_argument("--final-out", default=None, metavar="DIR",
                   help="--final: the model folder (default WORKDIR/final/VARIANT)")
    p.add_argument("--overwrite-final", action="store_true",
                   help="--final: replace an existing model folder (default: refuse)")
    p.add_argument("--ensemble", type=int, default=1, metavar="N",
                   help="--final: a seed ensemble of N models (train.seed, seed + 1, ...) in one "
                   "model folder, their class probabilities averaged (default 1: one model)")
    p.add_argument("--no-late-fusion", action="store_true",
                   help="--final: the adarl model folder holds the CNN alone (default: with the "
                   "eGeMAPS and ComParE SVMs of the late fusion, per speaker and global, when "
                   "openSMILE is installed; predict then averages their probabilities with the "
                   "CNN's: the global SVMs' for a speaker group of fewer than 11 recordings and "
                   "under --speaker-from training, the default)")


def _train(sub) -> None:
    p = _command(sub, "train", DEFAULT_CONFIG)
    p.add_argument("--variant", default=None, help="sets config.model.variant")
    _training_args(p)


def _reproduce(sub) -> None:
    p = _command(sub, "reproduce", DEFAULT_CONFIG)
    p.add_argument("--variants", default=None,
                   help="comma list (default: backbone,domain_invariant,adarl)")
    p.add_argument("--baselines", type=_baseline_sets, default=("egemaps", "compare"),
                   help="openSMILE + linear SVM baselines over the same folds: comma list of "
                   "egemaps, compare, or 'none' (default egemaps,compare; needs pip install "
                   "'adarl-jax[baselines]', skipped with a note otherwise)")
    _training_args(p)


def _report(sub) -> None:
    p = _command(sub, "report")
    p.add_argument("workdir_positional", nargs="?", metavar="WORKDIR", help=argparse.SUPPRESS)
    p.add_argument("--workdir", default=None, metavar="WORKDIR",
                   help="the run's folder (also accepted as the only positional argument)")
    p.add_argument("--no-figures", action="store_true",
                   help="skip the PNGs (confusion matrices, t-SNE)")


def _analyze(sub) -> None:
    p = _command(sub, "analyze")
    _workdir(p, help="a trained workdir")
    p.add_argument("--variant", default=None,
                   help="the variant to analyse (default: the workdir's, if it has one)")
    p.add_argument("--sample", type=int, default=64,
                   help="training utterances per fold whose attention is recorded (default 64)")
    p.add_argument("--statistics", action="store_true",
                   help="instead: score each fold model's validation speakers under every "
                        "speaker-statistics mode (what predict's default is chosen from)")


def _tune(sub) -> None:
    p = _command(sub, "tune", TUNE_CONFIG, default=None)
    p.add_argument("--grid", required=True,
                   help="a grid file or a name in configs/grids/ (recipe, fidelity)")
    _corpus_args(p)
    _workdir(p)
    _folds(p)
    p.add_argument("--variant", default=None, help="sets every candidate's model.variant")
    p.add_argument("--candidates", default=None, help="comma list: a subset of the grid's candidates")
    _no_progress(p)
    _allow_missing_class(p)
    _force_new_config(p, "WORKDIR/CANDIDATE")


def _seeds(sub) -> None:
    p = _command(sub, "seeds")
    p.add_argument("workdirs", nargs="+", metavar="WORKDIR", help="workdirs, one per seed")
    p.add_argument("--out", required=True, help="markdown file (a .json is written beside)")


def _contrast(sub) -> None:
    p = _command(sub, "contrast")
    p.add_argument("a", metavar="A", help="a variant (e.g. adarl)")
    p.add_argument("b", metavar="B", help="the variant it is compared with (e.g. adarl_no_domain_loss)")
    p.add_argument("workdirs", nargs="+", metavar="WORKDIR",
                   help="workdirs holding both variants, one seed of one corpus each")
    p.add_argument("--versus", nargs="+", default=None, metavar="WORKDIR",
                   help="the same variants under a second condition, as many seeds per corpus: "
                   "the report is then of the interaction, (A - B) here minus (A - B) there")
    p.add_argument("--out", required=True, help="markdown file (a .json is written beside)")


def _checkpoint_args(p) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", default=None, metavar="FOLDER",
                        help="a model folder written by train --final (default, with neither "
                        "this nor --checkpoint: the model shipped in the package, trained on "
                        "EmoDB: adarl_jax/pretrained/emodb)")
    source.add_argument("--checkpoint", default=None, metavar="WORKDIR",
                        help="a LOSO workdir (or one of its fold folders): a fold's model")
    p.add_argument("--variant", default=None,
                   help="which variant's folds (default: the only one, or the config's)")
    p.add_argument("--fold", type=_fold_arg, default=None,
                   help="fold index, or 'all' for the mean over folds (default: the only one)")
    p.add_argument("--buckets", type=_buckets, default=None,
                   help="batch sizes compiled, comma list (default 1,8,32)")


def _predict(sub) -> None:
    p = _command(sub, "predict")
    _checkpoint_args(p)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="audio files, folders (recursive), .txt lists of paths, or .csv files "
                   "with a header: path[,speaker]")
    p.add_argument("--out", default="-",
                   help="preds.csv, preds.json, or - (CSV to stdout, the default)")
    p.add_argument("--speaker-from", choices=SPEAKER_FROM, default=None,
                   help="who speaks, for a model standardised per speaker (the default recipe): "
                   "which inputs share the statistics. file: each file alone, so a file's output "
                   "never depends on the other inputs; folder: a folder is a speaker; call: all "
                   "inputs are one; column: the speaker column of a .csv input; training: the "
                   "statistics of the model's training speakers (none of the input's). Default: "
                   "column when a .csv input names speakers, else training for a model that keeps "
                   f"them, else {DEFAULT_SPEAKER_FROM}. Rows show the "
                   f"group (speaker) and its seconds of audio (speaker_s); under {MIN_SPEAKER_S:g} s "
                   "they carry a warning")
    p.add_argument("--timeline", action="store_true", help="also one row per 3 s segment")
    p.add_argument("--embeddings", default=None, metavar="OUT.npy",
                   help="also write each input's deep feature (the model's embedding, the mean "
                   "over its segments, as the probabilities are): an (n_inputs, D) float32 "
                   "array, rows in the order of --out's rows, NaN rows for failed inputs. With "
                   "--timeline also OUT.segments.npz: 'segments' (n_segments, D) float32, "
                   "'utterance_index' (row of each segment's input), 'start_s'. One fold model "
                   "only: refused with --fold all (each fold's features live in its own space)")
    _no_progress(p)


def _export(sub) -> None:
    p = _command(sub, "export")
    _checkpoint_args(p)
    p.add_argument("--out", required=True, help="artifact path, e.g. model.jax")
    p.add_argument("--input", choices=("spectrogram", "waveform"), default="spectrogram",
                   help="what the artifact takes (waveform: the front end is inside; for a model "
                   "standardised per speaker it takes the statistics of each call's segments: "
                   "call it with one file's or one speaker's segments)")
    p.add_argument("--platforms", default="cpu,cuda,tpu", help="comma list for jax.export")


def _prepare(sub) -> None:
    p = _command(sub, "prepare", DEFAULT_CONFIG)
    _corpus_args(p)
    _workdir(p, help="the run's folder; the cache goes to WORKDIR/cache/")
    _no_progress(p)


def _features(sub) -> None:
    p = _command(sub, "features", DEFAULT_CONFIG)
    p.add_argument("wav", nargs="+", metavar="WAV", help="audio files")
    p.add_argument("--out", required=True, metavar="X.npy", help="the .npy file to write")
    p.add_argument("--speaker-from", choices=("file", "call"), default="file",
                   help="a model standardised per speaker (the default recipe): the statistics of "
                   "each file alone (default) or of all files as one speaker, as predict's")
    p.add_argument("--raw", action="store_true",
                   help="write the front end's output before the per-speaker standardisation")


def build_parser(version: str = "unknown") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adarl-jax", description=TOP, epilog=TOP_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"adarl-jax {version}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full traceback instead of one line")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in (_reproduce, _train, _report, _analyze, _tune, _seeds, _contrast, _predict, _export, _prepare, _features):
        add(sub)
    for p in sub.choices.values():  # --debug and -v after the command too
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on an error, show the full traceback instead of one line")
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="log INFO messages")
    return parser


def split_overrides(argv: list[str]) -> tuple[list[str], list[str], list[str], str | None]:
    """(the arguments without overrides, the overrides as `--config.x=value`, the whole command
    line with every override in that form, the first malformed override's problem or None).
    After a lone `--` every argument is positional."""
    rest, overrides, full, problem = [], [], [], None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest += argv[i:]
            full += argv[i:]
            break
        if a.startswith(OVERRIDE_PREFIX) and "=" not in a:
            value = argv[i + 1] if i + 1 < len(argv) else None
            if value is None or value.startswith("--"):
                problem = problem or (f"{a}: expected a value: {a}=VALUE or {a} VALUE"
                                      + (f" (got the flag {value})" if value else ""))
            else:
                a, i = f"{a}={value}", i + 1
        (overrides if a.startswith(OVERRIDE_PREFIX) else rest).append(a)
        full.append(a)
        i += 1
    return rest, overrides, full, problem


def _resolve_report_workdir(args) -> None:
    given = {w for w in (args.workdir_positional, args.workdir) if w is not None}
    if len(given) != 1:
        args.usage_error("give the workdir once: report --workdir W (or report W)" if given else
                         "the following arguments are required: --workdir")
    args.workdir = given.pop()
    del args.workdir_positional


def parse(argv: list[str], version: str = "unknown") -> argparse.Namespace:
    """The Namespace of a command line (see the module docstring). A usage error prints the
    command's usage and exits 2, as argparse does; no command prints the help to stderr."""
    rest, overrides, full, problem = split_overrides(list(argv))
    parser = build_parser(version)
    args, unknown = parser.parse_known_args(rest)
    if getattr(args, "command", None) is None:
        parser.print_help(sys.stderr)
        raise SystemExit(2)
    if unknown:
        args.usage_error(f"unrecognized arguments: {' '.join(unknown)} ('{args.command}' does not "
                         f"read them; its flags: adarl-jax {args.command} --help)")
    if problem:
        args.usage_error(problem)
    if overrides and "config" not in vars(args):
        args.usage_error(f"{overrides[0].split('=')[0]}: '{args.command}' reads no config, so it "
                         "takes no --config.* overrides")
    if args.command == "report":
        _resolve_report_workdir(args)
    args.overrides, args.argv = overrides, full
    return args
