"""The final model: epochs from the finished LOSO run, one model on every speaker, a model
folder that Predictor.load serves (and export takes), its card, and bad folders named."""

import json
import math
import shutil

import jax
import numpy as np
import pytest

from conftest import TINY_OVERRIDES, make_corpus, tiny_input_shape

SPEAKERS = (("s1", "M"), ("s2", "F"), ("s3", "M"))
KEPT = {0: 1, 1: 2, 2: 1}  # selected_epoch + 1 written into the folds' results: median 1


def _config(manifest):
    from adarl_jax.config import load_config

    return load_config("smoke", [*TINY_OVERRIDES, "data.corpus=csv", f"data.manifest={manifest}",
                                 "model.variant=backbone", "train.progress=False"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-fold LOSO run (refused by train_final while one fold is missing), then the final
    model of it."""
    from adarl_jax.experiments import loso
    from adarl_jax.experiments.final_model import train_final
    from adarl_jax.train.sharding import make_mesh

    root = tmp_path_factory.mktemp("final")
    config = _config(make_corpus(root / "corpus", speakers=SPEAKERS, per_class=2))
    workdir, out = root / "W", root / "W" / "final" / "backbone"
    loso.run(config, workdir, folds="0,1", mesh=make_mesh(1), progress=False)
    with pytest.raises(ValueError, match=r"backbone.*not finished.*fold_02_s3"):
        train_final(config, workdir, out, mesh=make_mesh(1), progress=False)
    assert not out.exists()
    loso.run(config, workdir, folds="2", mesh=make_mesh(1), progress=False)
    for path in sorted(workdir.glob("backbone/fold_*/result.json")):
        r = json.loads(path.read_text())
        path.write_text(json.dumps({**r, "selected_epoch": KEPT[r["fold"]] - 1}))
    record = train_final(config, workdir, out, mesh=make_mesh(1), progress=False)
    return config, workdir, out, record


def test_epochs_are_the_median_of_the_folds_selections(trained):
    from adarl_jax.data.audio import segment_count
    from adarl_jax.experiments.final_model import epochs_rule

    config, workdir, out, record = trained
    assert record["epochs"]["epochs"] == int(np.median(list(KEPT.values()))) == 1
    assert {f["fold"]: f["epochs_kept"] for f in record["epochs"]["per_fold"]} == KEPT
    assert "median" in record["epochs"]["rule"]
    # every utterance trained, one epoch of full batches
    n_segments = sum(segment_count(n, sr) for n, sr in _frames(workdir))
    assert record["training"]["steps"] == math.ceil(n_segments / config.optim.batch_size)
    assert record["training"]["speakers"] == ["s1", "s2", "s3"]
    assert record["training"]["utterances"] == 24
    # the rule itself: half up between two, the middle of three
    rows = [{"fold": i, "test_speaker": f"s{i}", "selected_epoch": k} for i, k in enumerate((0, 1))]
    assert epochs_rule(rows)["epochs"] == 2
    rows = [{"fold": i, "test_speaker": f"s{i}", "selected_epoch": k} for i, k in enumerate((4, 0, 9))]
    assert epochs_rule(rows)["epochs"] == 5


def _frames(workdir):
    import soundfile as sf

    return [(sf.info(p).frames, sf.info(p).samplerate)
            for p in sorted((workdir.parent / "corpus" / "wav").glob("*.wav"))]


def test_the_folder_is_complete_and_refused_when_it_exists(trained):
    from adarl_jax.experiments.final_model import train_final

    config, workdir, out, record = trained
    assert sorted(p.name for p in out.iterdir()) == ["MODEL.md", "config.json", "model.json",
                                                     "params.npz"]
    assert not list(out.parent.glob(".*partial*"))
    meta = json.loads((out / "model.json").read_text())
    assert meta == json.loads(json.dumps(record))
    assert (meta["format_version"], meta["variant"], meta["classes"]) == (
        1, "backbone", list(config.data.classes))
    assert meta["parameters"] == sum(v.size for k, v in np.load(out / "params.npz").items()
                                     if k.startswith("params/"))
    with pytest.raises(FileExistsError, match="model.json"):
        train_final(config, workdir, out, progress=False)


def _reference_probs(folder, wave, sr):
    """model.apply on the front end's output, with the arrays read by numpy alone."""
    from adarl_jax.data.audio import segment
    from adarl_jax.config import config_from_json
    from adarl_jax.data.frontend import FrontendSpec, spectrogram
    from adarl_jax.model import build_model

    config = config_from_json((folder / "config.json").read_text())
    variables = {}
    for key, value in np.load(folder / "params.npz").items():
        *parents, leaf = key.split("/")
        node = variables
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    segs, lengths, _ = segment(wave, sr, config.data.segment_s, config.data.min_tail_s)
    x = spectrogram(segs, lengths, FrontendSpec.from_config(config))
    logits = build_model(config).apply(variables, x, train=False)["emotion_logits"]
    return np.asarray(jax.nn.softmax(logits, axis=-1)).mean(0), list(config.data.classes)


def test_load_predicts_as_the_parameters_applied_directly(trained):
    from adarl_jax.inference.export import export_predictor, load_exported
    from adarl_jax.inference.predict import Predictor

    _, _, out, _ = trained
    t = np.arange(int(4.5 * 16000)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 300 * t)
            + 0.05 * np.random.default_rng(1).normal(size=t.shape)).astype(np.float32)
    predictor = Predictor.load(out)
    got = predictor.predict(wave, 16000)
    want, classes = _reference_probs(out, wave, 16000)
    assert got["segments"] == 2
    np.testing.assert_allclose([got["probs"][c] for c in classes], want, atol=2e-6)
    assert got["emotion"] == classes[int(np.argmax(want))]
    # exported from the loaded predictor: the same function of spectrograms
    meta = export_predictor(predictor, out.parent / "m.jax", platforms=("cpu",))
    exported, _ = load_exported(out.parent / "m.jax")
    x = np.random.default_rng(2).normal(size=(3, *tiny_input_shape())).astype(np.float32)
    np.testing.assert_allclose(np.asarray(exported.call(x)), predictor.probs_of_spectrograms(x),
                               atol=1e-6)
    assert meta["source"] == f"model folder {out}" and meta["variant"] == "backbone"


def test_the_card_names_the_speakers_and_the_loso_figures(trained):
    _, workdir, out, _ = trained
    card = (out / "MODEL.md").read_text()
    assert "s1, s2, s3" in card
    ys, ps, fold_ua = [], [], []
    for path in sorted(workdir.glob("backbone/fold_*/result.json")):
        rows = json.loads(path.read_text())["utterances"]
        y = np.array([u["emotion"] for u in rows])
        p = np.array([np.argmax(u["probs"]) for u in rows])
        ys.append(y)
        ps.append(p)
        fold_ua.append(np.mean([np.mean(p[y == k] == k) for k in np.unique(y)]))
    y, p = np.concatenate(ys), np.concatenate(ps)
    ua = np.mean([np.mean(p[y == k] == k) for k in np.unique(y)])
    row = next(l for l in card.splitlines() if "(this recipe)" in l)
    assert f"| 3 | {np.mean(y == p):.3f} | {ua:.3f} | " in row
    assert f"{np.mean(fold_ua):.3f} ± {np.std(fold_ua, ddof=1):.3f}" in row
    assert "acted speech" in card and "unknown: check the corpus's licence" in card
    # the statistics a user has: folds with test-statistics labels (a speaker-normalised run
    # records them) give the card that table; here each recording alone ('utterance') says
    # anger for every test utterance, so its UA is 1 / (classes present)
    from adarl_jax.report.model_card import model_card

    runs = [json.loads(p.read_text()) for p in sorted(workdir.glob("backbone/fold_*/result.json"))]
    for r in runs:
        r["test_statistics"] = {"utterance": [[0] * len(r["utterances"])]}
    y = np.concatenate([[u["emotion"] for u in r["utterances"]] for r in runs])
    card = model_card(json.loads((out / "model.json").read_text()), runs)
    row = next(l for l in card.splitlines() if l.startswith("| backbone | "))
    assert "## UA under the statistics a user has" in card
    assert row == f"| backbone | {ua:.3f} | {1 / len(np.unique(y)):.3f} |"


def test_the_corpus_licence_is_quoted_from_its_source_file(tmp_path):
    from adarl_jax.report.model_card import corpus_licence

    (tmp_path / "SOURCE.md").write_text("# A corpus\n\nText.\n\n## Licence and citation\n\n"
                                        "CC BY 4.0, cite X.\n\n## Other\n\nNot this.\n")
    text = corpus_licence(tmp_path)
    assert "CC BY 4.0, cite X." in text and "Not this" not in text and "SOURCE.md" in text


def _copy(out, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    return bad


def test_bad_folders_raise_errors_naming_the_file(trained, tmp_path):
    from adarl_jax.inference.model_folder import ModelFolderError
    from adarl_jax.inference.predict import Predictor
    from adarl_jax.workdir.files import digest

    _, _, out, _ = trained
    assert issubclass(ModelFolderError, ValueError)
    bad = _copy(out, tmp_path)
    (bad / "params.npz").unlink()
    with pytest.raises(ModelFolderError, match=r"bad/params.npz: missing"):
        Predictor.load(bad)

    bad = _copy(out, tmp_path / "v")
    meta = json.loads((bad / "model.json").read_text())
    (bad / "model.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ModelFolderError, match=r"model.json: format_version 99 is newer"):
        Predictor.load(bad)

    bad = _copy(out, tmp_path / "t")
    (bad / "params.npz").write_bytes((bad / "params.npz").read_bytes()[:-10])
    with pytest.raises(ModelFolderError, match=r"params.npz: altered or truncated"):
        Predictor.load(bad)

    bad = _copy(out, tmp_path / "s")  # a config whose model is wider than the parameters
    config = json.loads((bad / "config.json").read_text())
    config["model"]["hidden"] = 12
    (bad / "config.json").write_text(json.dumps(config))
    meta["files"]["config.json"] = digest((bad / "config.json").read_bytes())  # consistent
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFolderError, match=r"params.npz: its arrays do not fit the model of "
                                               r".*config.json.*params/[\w/]+: params.npz \("):
        Predictor.load(bad)


def test_the_command_line_trains_predicts_and_exports_a_model_folder(trained, tmp_path, capsys):
    """train --final on the finished run (its folds skipped), then predict/export --model."""
    import csv

    import soundfile as sf

    from adarl_jax.cli import commands as cli
    from adarl_jax.experiments import workers
    from adarl_jax.inference.predict import Predictor

    _, workdir, out, record = trained
    folder = tmp_path / "F"
    argv = ["train", "--config", str(workdir / "config.json"), "--workdir", str(workdir),
            "--workers", "1", "--no-progress", "--final", "--final-out", str(folder)]
    assert cli.main(argv) == 0
    assert "final model: 1 epochs" in capsys.readouterr().out
    # the same training as the library call: the same parameters, up to the order of the
    # reductions (the command trains on all 8 test devices, the fixture on one; on a 2-core
    # AMD EPYC one weight of -0.0043 differed by 5.4e-6, so atol is a few times that)
    a, b = np.load(folder / "params.npz"), np.load(out / "params.npz")
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-3, atol=2e-5, err_msg=k)
    assert cli.main(argv) == 2  # an existing model folder is refused, not replaced
    assert "--overwrite-final" in capsys.readouterr().err
    # workers train folds only; the parent trains the final model once
    assert not {"--final", "--final-out", str(folder)} & set(workers.worker_argv(argv, [0], "c"))
    assert "--ensemble" not in workers.worker_argv([*argv, "--ensemble", "3"], [0], "c")
    without_final = [a for a in argv if a not in ("--final", "--final-out", str(folder))]
    assert cli.main([*without_final, "--ensemble", "2"]) == 2  # an ensemble is a final model's
    assert "only with --final" in capsys.readouterr().err

    wav = next((workdir.parent / "corpus" / "wav").glob("*.wav"))
    preds = tmp_path / "p.csv"
    assert cli.main(["predict", "--model", str(folder), str(wav), "--out", str(preds)]) == 0
    row = next(csv.DictReader(preds.open()))
    wave, sr = sf.read(wav, dtype="float32")
    want = Predictor.load(folder).predict(wave, sr)["probs"]
    for c, p in want.items():
        assert abs(float(row[f"p_{c}"]) - p) < 1e-5, (c, row)
    assert cli.main(["predict", "--model", str(folder), "--fold", "0", str(wav),
                     "--out", str(preds)]) == 2
    assert cli.main(["export", "--model", str(folder), "--out", str(tmp_path / "m.jax"),
                     "--platforms", "cpu"]) == 0
    assert (tmp_path / "m.jax").exists()


def test_a_seed_ensemble_averages_its_members_probabilities(trained, tmp_path):
    """train_final(members=2): two models trained alike from seeds 0 and 1, stacked in one
    folder; Predictor.load averages their probabilities, each member's computed on its own."""
    from adarl_jax.experiments.final_model import train_final
    from adarl_jax.inference.model_folder import ModelFolderError, read_model_folder
    from adarl_jax.inference.predict import Predictor
    from adarl_jax.train.sharding import make_mesh

    config, workdir, single, _ = trained
    out = tmp_path / "ensemble"
    record = train_final(config, workdir, out, mesh=make_mesh(1), progress=False, members=2)
    assert record["ensemble"]["members"] == 2 and record["ensemble"]["seeds"] == [0, 1]
    assert record["format_version"] == 2
    assert "seed ensemble of 2 models" in (out / "MODEL.md").read_text()
    cfg, stacked, meta = read_model_folder(out)
    first = jax.tree.map(lambda a: a[0], stacked)
    second = jax.tree.map(lambda a: a[1], stacked)
    # member 0 is the single final model (same seed, same training)
    _, one, _ = read_model_folder(single)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), first, one)
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)))

    wave = (0.3 * np.sin(2 * np.pi * 250 * np.arange(40000) / 16000)).astype(np.float32)
    ensemble = Predictor.load(out)
    assert ensemble.n_models == 2
    got = ensemble.predict(wave, 16000)["probs"]
    members = [Predictor(cfg, v, source="member").predict(wave, 16000)["probs"] for v in (first, second)]
    for c in got:
        assert got[c] == pytest.approx((members[0][c] + members[1][c]) / 2, abs=1e-6)

    meta_path = out / "model.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "ensemble": {**meta["ensemble"], "members": 3}}))
    with pytest.raises(ModelFolderError, match="an ensemble of 3"):
        read_model_folder(out)
    with pytest.raises(ValueError, match="at least 1 member"):
        train_final(config, workdir, tmp_path / "none", mesh=make_mesh(1), progress=False, members=0)
