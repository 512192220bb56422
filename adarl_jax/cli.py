"""The `adarl-jax` command line.

  adarl-jax prepare   --corpus emodb --data DIR --workdir W      cache spectrogram segments
  adarl-jax features  WAV... --out X.npy                          what the model sees
  adarl-jax train     --config configs/emodb.py --workdir W [--folds 0,3] [--variant adarl]
  adarl-jax reproduce --data DIR --workdir W                      3 variants x all folds + report
  adarl-jax report    W                                           merge finished folds
  adarl-jax predict   --checkpoint W [--fold K] PATH... --out preds.csv    batch inference
  adarl-jax export    --checkpoint W [--fold K] --out model.jax            jax.export artifact

Any `--config.section.field=value` overrides a config field; `--config` also takes a run's
saved `<workdir>/config.json`. A failure prints one line (`--debug`: the traceback) and exits
with a code that says what kind it is (adarl_jax.cli_errors: 2 bad input, 3 diverged, 4 disk).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

DEFAULT_VARIANTS = ("backbone", "domain_invariant", "adarl")


def _config_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--config", default=default,
                   help="config file or name in configs/ (default: %(default)s)")
    p.add_argument("--data", default=None, help="corpus folder (overrides config.data.dir)")
    p.add_argument("--corpus", default=None, help="emodb | ravdess | iemocap | csv")
    p.add_argument("--manifest", default=None, help="CSV manifest for --corpus csv")


def _load_config(args, overrides):
    from adarl_jax.config import load_config

    config = load_config(args.config, overrides)
    with config.unlocked():
        if args.data:
            config.data.dir = os.path.abspath(args.data)
        if args.corpus:
            config.data.corpus = args.corpus
        if args.manifest:
            config.data.manifest = os.path.abspath(args.manifest)
        if getattr(args, "variant", None):
            config.model.variant = args.variant
        if getattr(args, "no_progress", False):
            config.train.progress = False
    return config


def cmd_prepare(args, overrides) -> int:
    from adarl_jax.loso import load_dataset

    config = _load_config(args, overrides)
    t0 = time.time()
    ds = load_dataset(config, args.workdir, progress=not args.no_progress)
    summary = ds.summary()
    summary["time_s"] = round(time.time() - t0, 1)
    import json

    print(json.dumps(summary, indent=1))
    return 0


def cmd_features(args, overrides) -> int:
    import numpy as np

    from adarl_jax.dataset import compute_features
    from adarl_jax.files import save_npy_atomic

    config = _load_config(args, overrides)
    x = compute_features(args.wav, config)
    save_npy_atomic(args.out, np.asarray(x))
    print(f"wrote {args.out}: {x.shape} {x.dtype}")
    return 0


def _baseline_sets(text: str) -> tuple[str, ...]:
    sets = tuple(s.strip() for s in text.split(",") if s.strip() and s.strip() != "none")
    bad = [s for s in sets if s not in ("egemaps", "compare")]
    if bad:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list of egemaps, compare "
                                         "or 'none'")
    return sets


def _train(args, overrides, variants, baselines=()) -> int:
    from adarl_jax import loso
    from adarl_jax.report import write_report

    config = _load_config(args, overrides)
    progress = config.train.progress and not args.no_progress
    t0 = time.time()
    rc, n = 0, 1
    if args.workers != 1 and not args.coordinator:
        from adarl_jax import workers

        _, chosen, _ = loso.prepare(config, args.workdir, args.folds, progress=progress,
                                    baselines=baselines, force_new_config=args.force_new_config)
        baselines = ()  # done
        n = workers.default_workers(len(chosen)) if args.workers == 0 else args.workers
        if n > 1:
            rc = workers.run_workers(args.argv, [f.index for f in chosen], n)
            if rc:
                return rc
            missing = [f"{v}/fold {f.index}" for v in (variants or [config.model.variant])
                       for f in chosen if not (loso.fold_dir(args.workdir, v, f) / "result.json").exists()]
            if missing:
                print(f"adarl-jax {args.command}: error: the workers ended without finishing "
                      f"{', '.join(missing)}; rerun the command to resume", file=sys.stderr)
                return 1
    if n <= 1:
        loso.run(config, args.workdir, folds=args.folds, variants=variants, progress=progress,
                 baselines=baselines, force_new_config=args.force_new_config)
    import jax

    if jax.process_index() == 0:
        write_report(args.workdir)
        print(open(os.path.join(args.workdir, "report.md")).read().split("\n## ")[0])
        print(f"wall time {time.time() - t0:.0f} s; results in {args.workdir}/results.json")
    return rc


def cmd_train(args, overrides) -> int:
    return _train(args, overrides, [args.variant] if args.variant else None)


def cmd_reproduce(args, overrides) -> int:
    variants = args.variants.split(",") if args.variants else list(DEFAULT_VARIANTS)
    return _train(args, overrides, variants, args.baselines)


def cmd_tune(args, overrides) -> int:
    from adarl_jax.tune import load_grid, run_tune

    grid = load_grid(args.grid)
    extra = list(overrides)
    for flag, field in ((args.data and os.path.abspath(args.data), "data.dir"),
                        (args.corpus, "data.corpus"),
                        (args.manifest and os.path.abspath(args.manifest), "data.manifest")):
        if flag:
            extra.append(f"{field}={flag}")
    progress = not args.no_progress
    record = run_tune(grid, args.workdir, extra, folds=args.folds, variant=args.variant,
                      config_spec=args.config, progress=progress,
                      only=args.candidates.split(",") if args.candidates else None)
    print(open(os.path.join(args.workdir, "tune.md")).read())
    print(f"wall time {record['wall_time_s']:.0f} s; {args.workdir}/tune.json")
    return 0


def cmd_report(args, overrides) -> int:
    from adarl_jax.report import write_report

    write_report(args.workdir, figures=not args.no_figures)
    print(open(os.path.join(args.workdir, "report.md")).read())
    return 0


def cmd_seeds(args, overrides) -> int:
    from adarl_jax.seeds import write_seeds_report

    write_seeds_report(args.workdirs, args.out)
    print(open(args.out).read())
    return 0


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


def _checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True,
                   help="trained workdir (or one of its fold folders)")
    p.add_argument("--variant", default=None, help="which variant's folds (default: the only one, "
                   "or the config's)")
    p.add_argument("--fold", type=_fold_arg, default=None,
                   help="fold index, or 'all' for the mean over folds (default: the only one)")
    p.add_argument("--buckets", type=_buckets, default=None,
                   help="batch sizes compiled, comma list (default 1,8,32)")


def _predictor(args):
    from adarl_jax.predict import DEFAULT_BUCKETS, Predictor

    return Predictor.from_checkpoint(args.checkpoint, args.variant, args.fold,
                                     buckets=args.buckets or DEFAULT_BUCKETS)


def cmd_predict(args, overrides) -> int:
    from adarl_jax.predict import expand_inputs, write_embeddings, write_predictions

    if os.path.splitext(args.out)[1].lower() not in (".csv", ".json"):
        raise ValueError(f"--out {args.out}: expected a .csv or .json file name")
    if args.embeddings and os.path.splitext(args.embeddings)[1].lower() != ".npy":
        raise ValueError(f"--embeddings {args.embeddings}: expected a .npy file name")
    if args.embeddings and args.fold == "all":
        raise ValueError("--embeddings with --fold all: the fold models' deep features live in "
                         "different spaces, so their mean is not an embedding; choose one fold "
                         "(--fold K)")
    paths = expand_inputs(args.paths)
    if not paths:
        raise FileNotFoundError(f"no audio files in {' '.join(args.paths)}")
    predictor = _predictor(args)
    print(f"model: {predictor.source}", file=sys.stderr)
    stats: dict = {}
    records = predictor.predict_files(paths, timeline=args.timeline, progress=not args.no_progress,
                                      stats=stats, embeddings=bool(args.embeddings))
    write_predictions(records, args.out, predictor.classes, timeline=args.timeline)
    if args.embeddings:
        for path in write_embeddings(records, args.embeddings, predictor.embedding_dim):
            print(f"wrote {path}", file=sys.stderr)
    done = stats["files"] - stats["failed"]
    print(f"predicted {done} files, {stats['failed']} failed, {stats['segments']} segments in "
          f"{stats['seconds']:.1f} s ({stats['files'] / max(stats['seconds'], 1e-9):.2f} files/s, "
          f"{stats['compilations']} compilations); wrote {args.out}")
    if stats["warned"]:
        print(f"adarl-jax predict: warning: {stats['warned']} of {stats['files']} file(s) are "
              f"silent or truncated (see the warning column of {args.out})", file=sys.stderr)
    if done == 0:
        print(f"adarl-jax predict: error: every input failed ({stats['failed']} of "
              f"{stats['files']}; see the error column of {args.out})", file=sys.stderr)
        return 2
    if stats["failed"]:
        print(f"adarl-jax predict: warning: {stats['failed']} of {stats['files']} input(s) failed "
              f"(see the error column of {args.out})", file=sys.stderr)
    return 0


def cmd_export(args, overrides) -> int:
    from adarl_jax.export import export_predictor

    predictor = _predictor(args)
    platforms = tuple(p for p in args.platforms.split(",") if p)
    meta = export_predictor(predictor, args.out, input=args.input, platforms=platforms)
    for info in meta["artifacts"].values():
        print(f"wrote {os.path.join(os.path.dirname(args.out), info['file'])}: "
              f"{info['bytes']:,} bytes, batch {meta['batch']}, {args.input} "
              f"{meta['input_shape']} -> probabilities {meta['classes']}, platforms {platforms}")
    print(f"wrote {args.out}.json (what the input means; model: {predictor.source})")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("adarl-jax")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adarl-jax", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full traceback instead of one line")
    parser.add_argument("--version", action="version", version=f"adarl-jax {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="compute and cache the spectrogram segments of a corpus")
    _config_args(p)
    p.add_argument("--workdir", required=True)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=cmd_prepare)

    p = sub.add_parser("features", help="write the (segments, freq, time, 3) input of wav files")
    _config_args(p)
    p.add_argument("wav", nargs="+")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_features)

    for name, fn, default in (("train", cmd_train, "emodb"), ("reproduce", cmd_reproduce, "quick")):
        p = sub.add_parser(name, help="LOSO training of one variant" if name == "train" else
                           "all three variants over all LOSO folds, then the report")
        _config_args(p, default)
        p.add_argument("--workdir", required=True)
        p.add_argument("--folds", default=None, help="fold indices, e.g. 0,3 or 0-4 (default all)")
        if name == "train":
            p.add_argument("--variant", default=None, help="overrides config.model.variant")
        else:
            p.add_argument("--variants", default=None, help="comma list (default: all three)")
            p.add_argument("--baselines", type=_baseline_sets, default=("egemaps", "compare"),
                           help="openSMILE + linear SVM baselines over the same folds: comma "
                           "list of egemaps, compare, or 'none' (default egemaps,compare; needs "
                           "pip install 'adarl-jax[baselines]', skipped with a note otherwise)")
        p.add_argument("--no-progress", action="store_true")
        p.add_argument("--force-new-config", action="store_true",
                       help="the workdir was trained under another config: move what it trained "
                       "to <workdir>/superseded-<time>/ and start afresh (default: refuse)")
        p.add_argument("--workers", type=int, default=0,
                       help="fold-training processes on this machine, each pinned to its own "
                       "cores (default 0 = one per core on a CPU-only host, 1 on GPU/TPU)")
        p.add_argument("--coordinator", default=None,
                       help="host:port of process 0 (multi-process), or auto (TPU pod, SLURM, MPI)")
        p.add_argument("--num_processes", type=int, default=None)
        p.add_argument("--process_id", type=int, default=None)
        p.add_argument("--init_timeout", type=int, default=300, help="seconds to wait for the coordinator")
        p.set_defaults(fn=fn)

    p = sub.add_parser("tune", help="nested recipe selection: per fold, the grid candidate with "
                       "the best validation UA is tested on the fold's speaker")
    _config_args(p)
    p.add_argument("--grid", required=True, help="a grid file or a name in configs/grids/ (e.g. recipe)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--folds", default=None, help="fold indices, e.g. 0,3 or 0-4 (default all)")
    p.add_argument("--variant", default=None, help="overrides every candidate's model.variant")
    p.add_argument("--candidates", default=None, help="comma list: a subset of the grid's candidates")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=cmd_tune)

    p = sub.add_parser("report", help="merge finished folds into results.json and report.md")
    p.add_argument("workdir")
    p.add_argument("--no-figures", action="store_true",
                   help="skip the PNGs (confusion matrices, t-SNE)")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("seeds", help="mean ± std over workdirs that differ only in the seed")
    p.add_argument("workdirs", nargs="+")
    p.add_argument("--out", required=True, help="markdown file (a .json is written beside)")
    p.set_defaults(fn=cmd_seeds)

    p = sub.add_parser("predict", help="class probabilities of audio files with a trained fold")
    _checkpoint_args(p)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="audio files, folders (recursive) or .txt lists of paths")
    p.add_argument("--out", required=True, help="preds.csv or preds.json")
    p.add_argument("--timeline", action="store_true", help="also one row per 3 s segment")
    p.add_argument("--embeddings", default=None, metavar="OUT.npy",
                   help="also write each input's deep feature (the model's embedding, the mean "
                   "over its segments, as the probabilities are): an (n_inputs, D) float32 "
                   "array, rows in the order of --out's rows, NaN rows for failed inputs. With "
                   "--timeline also OUT.segments.npz: 'segments' (n_segments, D) float32, "
                   "'utterance_index' (row of each segment's input), 'start_s'. One fold model "
                   "only: refused with --fold all (each fold's features live in its own space)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser("export", help="write a jax.export artifact: spectrogram -> probabilities")
    _checkpoint_args(p)
    p.add_argument("--out", required=True, help="artifact path, e.g. model.jax")
    p.add_argument("--input", choices=("spectrogram", "waveform"), default="spectrogram",
                   help="what the artifact takes (waveform: the front end is inside)")
    p.add_argument("--platforms", default="cpu,cuda,tpu", help="comma list for jax.export")
    p.set_defaults(fn=cmd_export)
    for p in sub.choices.values():  # --debug after the subcommand too
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on an error, show the full traceback instead of one line")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    full_argv = list(argv)  # with the overrides: what --workers' processes run
    if not argv:
        build_parser().print_help()
        return 2
    overrides = [a for a in argv if a.startswith("--config.")]
    argv = [a for a in argv if not a.startswith("--config.")]
    args = build_parser().parse_args(argv)
    args.argv = full_argv
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        from adarl_jax.runtime import setup_runtime

        setup_runtime(args)
        return args.fn(args, overrides)
    except Exception as e:  # one line and an exit code per kind (diverged: 3, finished folds kept)
        if args.debug:
            raise
        from adarl_jax.cli_errors import describe

        code, message = describe(e, getattr(args, "workdir", None) or getattr(args, "out", None))
        print(f"adarl-jax {args.command}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
