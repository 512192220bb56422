"""The `adarl-jax` command line: each command parses (adarl_jax.cli.parser), then makes one
library call. `adarl-jax --help` lists the commands; `adarl-jax COMMAND --help` says what one
does and writes, with an example, the config it defaults to and the override syntax.

A failure prints one line (`--debug`: the traceback) and exits with a code that says what kind
it is (adarl_jax.cli.errors: 2 bad input, 3 diverged, 4 disk, 5 locked, 6 checkpoint, 143
stopped by SIGTERM).
"""

from __future__ import annotations

import logging
import os
import sys
import time

from adarl_jax.cli.parser import parse

DEFAULT_VARIANTS = ("backbone", "domain_invariant", "adarl")


def _load_config(args, overrides):
    from adarl_jax.config import load_config
    from adarl_jax.model.registry import use_variant

    config = load_config(args.config, overrides)
    with config.unlocked():
        if getattr(args, "data", None):
            config.data.dir = os.path.abspath(args.data)
        if getattr(args, "corpus", None):
            config.data.corpus = args.corpus
        if getattr(args, "manifest", None):
            config.data.manifest = os.path.abspath(args.manifest)
        if getattr(args, "extra_data", None):
            config.data.extra = tuple(args.extra_data)
        if getattr(args, "test_data", None):
            config.data.test = args.test_data
        if getattr(args, "variant", None):
            use_variant(config, args.variant)
        if getattr(args, "no_progress", False):
            config.train.progress = False
        if getattr(args, "allow_missing_class", False):
            config.train.allow_missing_class = True
    return config


def config_from_argv(argv: list[str]):
    """The config a command line runs with (its --config, overrides and flags), without
    running it; usage errors exit 2 as the command would."""
    args = parse(argv, _version())
    if "config" not in vars(args) or args.command == "tune":
        raise ValueError(f"'{args.command}' has no single config of its own")
    return _load_config(args, args.overrides)


def cmd_prepare(args, overrides) -> int:
    from adarl_jax.data.reading import load_dataset

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

    from adarl_jax.data.dataset import compute_features
    from adarl_jax.workdir.files import save_npy_atomic
    from adarl_jax.data.dataset import compute_features, normalize_segments, speaker_statistics

    config = _load_config(args, overrides)
    x, index, _, frames = compute_features(args.wav, config, with_index=True, with_frames=True)
    note = ""
    if config.frontend.normalize in ("speaker", "utterance"):
        if args.raw:
            note = " (before the per-speaker standardisation: --raw)"
        else:  # what the model sees: standardised as predict --speaker-from does
            per_file = args.speaker_from == "file" or config.frontend.normalize == "utterance"
            groups = index if per_file else np.zeros_like(index)
            x = normalize_segments(x, frames, groups, speaker_statistics(x, frames, groups))
            note = f" (standardised per speaker, --speaker-from {args.speaker_from})"
    save_npy_atomic(args.out, np.asarray(x))
    print(f"wrote {args.out}: {x.shape} {x.dtype}{note}")
    return 0


def _train(args, overrides, variants, baselines=()) -> int:
    from adarl_jax.report.report import write_report

    if args.ensemble < 1 or (args.ensemble > 1 and not args.final):
        raise ValueError(f"--ensemble {args.ensemble}: a final model's seed count, at least 1, "
                         "and only with --final")
    config = _load_config(args, overrides)
    progress = config.train.progress and not args.no_progress
    t0 = time.time()
    rc, dataset = _train_folds(args, config, variants, baselines, progress)
    if rc:
        return rc
    import jax

    if jax.process_index() == 0:
        if args.no_report:
            print(f"wall time {time.time() - t0:.0f} s; no report (--no-report): adarl-jax report "
                  f"{args.workdir} writes it")
        else:
            write_report(args.workdir)
            print(open(os.path.join(args.workdir, "report.md")).read().split("\n## ")[0])
            print(f"wall time {time.time() - t0:.0f} s; results in {args.workdir}/results.json")
    if args.final:
        _train_final(args, config, variants or [config.model.variant], progress, dataset)
    return rc


def _train_folds(args, config, variants, baselines, progress: bool):
    """The LOSO folds, in this process or (--workers, one host) in worker processes that
    this one starts once it has prepared the workdir; returns (exit code, the dataset this
    process read)."""
    from adarl_jax.experiments import loso, workers

    first = _baselines(args, config, baselines, progress) if baselines else None
    if args.workers == 1 or args.coordinator:
        if args.claims and args.coordinator:
            raise ValueError("--claims (a --workers worker's) and --coordinator (a multi-process "
                             "job, every process on the same folds) do not go together")
        claims = workers.Claims(args.claims) if args.claims else None
        _, dataset = loso.run_job(config, args.workdir, folds=args.folds, variants=variants,
                                  progress=progress, first=first,
                                  force_new_config=args.force_new_config, claims=claims)
        return 0, dataset
    from adarl_jax.workdir.layout import fold_dir, result_path

    dataset, chosen, _ = loso.prepare(config, args.workdir, args.folds, progress=progress,
                                      first=first, force_new_config=args.force_new_config)
    names = variants or [config.model.variant]
    n = workers.default_workers(len(chosen) * len(names)) if args.workers == 0 else args.workers
    if n <= 1:
        loso.train_variants(config, args.workdir, dataset, chosen, variants, progress=progress)
        return 0, dataset
    rc = workers.run_workers(args.argv, [f.index for f in chosen], n, args.workdir)
    if rc:
        return rc, dataset
    missing = [f"{v}/fold {f.index}" for v in names
               for f in chosen if not result_path(fold_dir(args.workdir, v, f)).exists()]
    if missing:
        print(f"adarl-jax {args.command}: error: the workers ended without finishing "
              f"{', '.join(missing)}; rerun the command to resume", file=sys.stderr)
        return 1, dataset
    return 0, dataset


def _baselines(args, config, feature_sets, progress: bool):
    """The `reproduce` job's openSMILE baselines ('egemaps', 'compare'; skipped with a message
    when the optional `opensmile` package is missing), run on the folds once `loso.prepare`
    has locked them: a function of the prepared dataset returning the baselines' records."""
    import jax

    from adarl_jax.baselines.opensmile import run_baselines

    def run(dataset) -> list[dict]:
        found = run_baselines(config, args.workdir, feature_sets=tuple(feature_sets),
                              folds=args.folds, utterances=dataset.utterances, progress=progress,
                              write=jax.process_index() == 0)
        return [record for records in found.values() for record in records]

    return run


def _train_final(args, config, variants, progress: bool, dataset=None) -> None:
    """One final model per variant; `dataset` (read for `config`) serves each variant that
    reads the same data (reading.reads_same_data), so that it is not read again."""
    from adarl_jax.experiments.final_model import train_final
    from adarl_jax.data.reading import reads_same_data
    from adarl_jax.model.registry import use_variant

    if args.final_out and len(variants) > 1:
        raise ValueError(f"--final-out names one folder, but {len(variants)} variants are "
                         f"trained ({', '.join(variants)}): leave it out (WORKDIR/final/VARIANT)")
    for variant in variants:
        c = config.copy_and_resolve_references()
        use_variant(c, variant)
        out = args.final_out or os.path.join(args.workdir, "final", variant)
        same = dataset is not None and reads_same_data(config, c)
        record = train_final(c, args.workdir, out, progress=progress,
                             overwrite=args.overwrite_final, dataset=dataset if same else None,
                             members=args.ensemble, late_fusion=not args.no_late_fusion)
        fused = (" with the late fusion's SVMs (" + ", ".join(record["late_fusion"]["functionals"])
                 + ")" if record.get("late_fusion") else "")
        print(f"[{variant}] final model: {record['epochs']['epochs']} epochs "
              f"({record['epochs']['rule']}){fused}; wrote {out} (card: {out}/MODEL.md)")


def cmd_train(args, overrides) -> int:
    return _train(args, overrides, [args.variant] if args.variant else None)


def cmd_reproduce(args, overrides) -> int:
    variants = args.variants.split(",") if args.variants else list(DEFAULT_VARIANTS)
    return _train(args, overrides, variants, args.baselines)


def cmd_tune(args, overrides) -> int:
    from adarl_jax.experiments.tune import load_grid, run_tune

    grid = load_grid(args.grid)
    extra = list(overrides)
    for flag, field in ((args.data and os.path.abspath(args.data), "data.dir"),
                        (args.corpus, "data.corpus"),
                        (args.manifest and os.path.abspath(args.manifest), "data.manifest")):
        if flag:
            extra.append(f"{field}={flag}")
    if args.extra_data:
        extra.append(f"data.extra={tuple(args.extra_data)!r}")
    if args.test_data:
        extra.append(f"data.test={args.test_data!r}")
    if args.allow_missing_class:
        extra.append("train.allow_missing_class=True")
    progress = not args.no_progress
    record = run_tune(grid, args.workdir, extra, folds=args.folds, variant=args.variant,
                      config_spec=args.config, progress=progress,
                      only=args.candidates.split(",") if args.candidates else None,
                      force_new_config=args.force_new_config)
    print(open(os.path.join(args.workdir, "tune.md")).read())
    print(f"wall time {record['wall_time_s']:.0f} s; {args.workdir}/tune.json")
    return 0


def cmd_report(args, overrides) -> int:
    from adarl_jax.report.report import write_report

    write_report(args.workdir, figures=not args.no_figures)
    print(open(os.path.join(args.workdir, "report.md")).read())
    return 0


def cmd_analyze(args, overrides) -> int:
    from adarl_jax.report.attention import analyze_workdir
    from adarl_jax.report.user_statistics import validation_statistics

    if args.statistics:
        md, _ = validation_statistics(args.workdir, args.variant)
    else:
        md, _ = analyze_workdir(args.workdir, args.variant, sample=args.sample)
    print(md.read_text())
    return 0


def cmd_seeds(args, overrides) -> int:
    from adarl_jax.report.seeds import write_seeds_report

    write_seeds_report(args.workdirs, args.out)
    print(open(args.out).read())
    return 0


def cmd_contrast(args, overrides) -> int:
    from adarl_jax.report.contrast import write_contrast_report

    write_contrast_report(args.a, args.b, args.workdirs, args.out, versus=args.versus)
    print(open(args.out).read())
    return 0


def _predictor(args):
    from adarl_jax.inference.predict import DEFAULT_BUCKETS, Predictor

    buckets = args.buckets or DEFAULT_BUCKETS
    if not args.model and not args.checkpoint:  # the model shipped in the package
        if args.variant or args.fold is not None:
            raise ValueError("--variant and --fold choose among a workdir's fold models: give "
                             "--checkpoint WORKDIR")
        return Predictor.from_pretrained(buckets=buckets)
    if args.model:
        if args.variant or args.fold is not None:
            raise ValueError("--variant and --fold choose among a workdir's fold models: a "
                             "--model folder holds one model")
        return Predictor.load(args.model, buckets=buckets)
    return Predictor.from_checkpoint(args.checkpoint, args.variant, args.fold, buckets=buckets)


def cmd_predict(args, overrides) -> int:
    from adarl_jax.inference.predict import expand_inputs, write_embeddings, write_predictions
    from adarl_jax.inference.predict import read_inputs, write_embeddings, write_predictions
    from adarl_jax.inference.speakers import speaker_groups

    if args.out != "-" and os.path.splitext(args.out)[1].lower() not in (".csv", ".json"):
        raise ValueError(f"--out {args.out}: expected a .csv or .json file name, or - (CSV to "
                         "stdout)")
    if args.embeddings and os.path.splitext(args.embeddings)[1].lower() != ".npy":
        raise ValueError(f"--embeddings {args.embeddings}: expected a .npy file name")
    if args.embeddings and args.fold == "all":
        raise ValueError("--embeddings with --fold all: the fold models' deep features live in "
                         "different spaces, so their mean is not an embedding; choose one fold "
                         "(--fold K)")
    inputs = read_inputs(args.paths)
    if not inputs.paths:
        raise FileNotFoundError(f"no audio files in {' '.join(args.paths)}")
    predictor = _predictor(args)
    rule = args.speaker_from or ("column" if inputs.speakers else predictor.default_speaker_from)
    groups = speaker_groups(inputs.paths, rule, inputs.speakers)
    print(f"model: {predictor.source}", file=sys.stderr)
    stats: dict = {}
    records = predictor.predict_files(inputs.paths, timeline=args.timeline,
                                      progress=not args.no_progress, stats=stats,
                                      embeddings=bool(args.embeddings), speakers=groups)
    write_predictions(records, args.out, predictor.classes, timeline=args.timeline)
    if args.embeddings:
        for path in write_embeddings(records, args.embeddings, predictor.embedding_dim):
            print(f"wrote {path}", file=sys.stderr)
    done = stats["files"] - stats["failed"]
    where = "stdout" if args.out == "-" else args.out
    print(f"predicted {done} files, {stats['failed']} failed, {stats['segments']} segments in "
          f"{stats['seconds']:.1f} s ({stats['files'] / max(stats['seconds'], 1e-9):.2f} files/s, "
          f"{stats['compilations']} compilations); wrote {where}",
          file=sys.stderr if args.out == "-" else sys.stdout)
    if predictor.uses_speaker_norm:
        print(f"speaker statistics: --speaker-from {rule}", file=sys.stderr)
    if stats["warned"]:
        print(f"adarl-jax predict: warning: {stats['warned']} of {stats['files']} file(s) have "
              f"warnings (see the warning column of {where})", file=sys.stderr)
    if done == 0:
        print(f"adarl-jax predict: error: every input failed ({stats['failed']} of "
              f"{stats['files']}; see the error column of {where})", file=sys.stderr)
        return 2
    if stats["failed"]:
        print(f"adarl-jax predict: warning: {stats['failed']} of {stats['files']} input(s) failed "
              f"(see the error column of {where})", file=sys.stderr)
    return 0


def cmd_export(args, overrides) -> int:
    from adarl_jax.inference.export import export_predictor

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


def main(argv=None) -> int:
    try:
        args = parse(list(sys.argv[1:] if argv is None else argv), _version())
    except SystemExit as e:  # --help, --version, a usage error (argparse's exit code)
        return e.code or 0
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from adarl_jax.cli.errors import EXIT_TERMINATED, Terminated, on_sigterm

    try:
        from adarl_jax.cli.runtime import setup_runtime

        with on_sigterm():
            setup_runtime(args)
            return globals()[f"cmd_{args.command}"](args, args.overrides)
    except Terminated as e:  # its locks released on the way out (finally clauses)
        print(f"adarl-jax {args.command}: {e}; finished work is kept and locks are released: "
              f"rerun the command to resume (exit {EXIT_TERMINATED})", file=sys.stderr, flush=True)
        return EXIT_TERMINATED
    except Exception as e:  # one line and an exit code per kind (diverged: 3, finished folds kept)
        if args.debug:
            raise
        from adarl_jax.cli.errors import describe

        code, message = describe(e, getattr(args, "workdir", None) or getattr(args, "out", None))
        print(f"adarl-jax {args.command}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
