"""The fusion variant's pipeline (`adarl_fusion`): openSMILE functionals extracted once per
utterance and cached, standardised as the spectrogram is, passed to the model in training,
in the fold's test and by `predict` and `export` under the same rule. openSMILE is an optional
extra, so a stand-in extractor (a deterministic function of the audio) takes its place."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from adarl_jax import cli
from conftest import TINY_OVERRIDES, make_corpus

D = 88  # the eGeMAPS set's size, which the model is built for


def stand_in(feature_set):
    """(extract, id, names) like data.functionals.opensmile_extractor: log magnitudes of the
    first D bins of the whole recording's spectrum."""
    def extract(wave, sample_rate):
        spectrum = np.abs(np.fft.rfft(np.asarray(wave, np.float64), n=2 * D))[:D]
        return np.log(spectrum + 1e-3).astype(np.float32)

    return extract, f"stand-in {feature_set}", [f"f{i}" for i in range(D)]


@pytest.fixture(scope="module")
def stand_in_extractor():
    import adarl_jax.data.functionals as functionals
    import adarl_jax.inference.predict as predict

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(functionals, "opensmile_extractor", stand_in)
        mp.setattr(predict, "opensmile_extractor", stand_in)
        mp.setenv("ADARL_JAX_COMPILATION_CACHE", "off")
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory, stand_in_extractor):
    """One fold of adarl_fusion trained through the CLI, speaker-standardised, in this
    process (so the stand-in extractor is used)."""
    root = tmp_path_factory.mktemp("fusion")
    manifest = make_corpus(root / "corpus")
    workdir = root / "W"
    rc = cli.main(["train", "--config", "smoke", "--corpus", "csv", "--manifest", str(manifest),
                   "--workdir", str(workdir), "--folds", "0", "--no-progress", *TINY_OVERRIDES,
                   "--config.optim.epochs=2", "--config.model.variant=adarl_fusion",
                   "--config.frontend.normalize=speaker",
                   "--config.eval.test_statistics=('utterance', 'enrol:2')"])
    assert rc == 0
    return workdir


def test_a_fusion_fold_trains_and_predict_and_export_reproduce_its_test(trained, tmp_path):
    from adarl_jax.data.audio import load_audio
    from adarl_jax.inference.export import export_predictor, load_exported
    from adarl_jax.inference.predict import Predictor

    config = json.loads((trained / "config.json").read_text())
    assert config["model"]["functionals"] == "egemaps"  # the declared setting is recorded
    result = json.loads(next((trained / "adarl_fusion").glob("fold_00_*/result.json")).read_text())
    assert set(result["test_statistics"]) == {"utterance", "enrol:2"}
    # the cache holds the extractor's rows of every file
    index = json.loads(next((trained / "cache").glob("opensmile_egemaps_*.json")).read_text())
    rows = np.load(next((trained / "cache").glob("opensmile_egemaps_*.npy")))
    for path, row in list(zip(index["files"], rows))[:4]:
        np.testing.assert_allclose(row, stand_in("egemaps")[0](load_audio(path, 16000), 16000),
                                   rtol=1e-5, atol=1e-5)
    # predict with the test speaker's files as one group = the fold's own test
    predictor = Predictor.from_checkpoint(trained, variant="adarl_fusion", fold=0)
    paths = [u["path"] for u in result["utterances"]]
    got = predictor.predict_files(paths, speakers="call")
    for rec, want in zip(got, result["utterances"]):
        assert rec["error"] is None
        np.testing.assert_allclose(list(rec["probs"].values()), want["probs"], atol=1e-4)
    # one file alone: its functionals say nothing (zeros), whatever else the call holds
    alone = predictor.predict_files(paths[:1])[0]
    mixed = predictor.predict_files(paths[::-1])[-1]
    np.testing.assert_allclose(list(alone["probs"].values()), list(mixed["probs"].values()),
                               atol=1e-6)
    # the exported artifact takes the functionals as its second input
    meta = export_predictor(predictor, tmp_path / "model.jax", platforms=("cpu",))
    assert len(meta["inputs"]) == 2 and "functionals" in meta["inputs"][1]
    x = np.random.default_rng(0).normal(size=(3, *predictor.spec.output_shape)).astype(np.float32)
    u = np.random.default_rng(1).normal(size=(3, D)).astype(np.float32)
    exported, _ = load_exported(tmp_path / "model.jax")
    np.testing.assert_allclose(np.asarray(exported.call(x, u)),
                               predictor.probs_of_spectrograms(x, u), atol=1e-5)
    with pytest.raises(ValueError, match="functionals"):
        predictor.probs_of_spectrograms(x)


def test_training_statistics_are_kept_and_standardise_every_input_alike(trained):
    """--speaker-from training: the fold's training speakers' pooled statistics (spectrogram
    and functionals), kept beside the fold model, standardise each input; checked against the
    pooled statistics computed here from the training files and the model run by hand."""
    from adarl_jax.data.audio import load_audio
    from adarl_jax.data.dataset import compute_features
    from adarl_jax.inference.predict import Predictor
    from adarl_jax.workdir.statistics_file import read_statistics

    fold_dir = next((trained / "adarl_fusion").glob("fold_00_*"))
    result = json.loads((fold_dir / "result.json").read_text())
    kept = read_statistics(fold_dir)
    predictor = Predictor.from_checkpoint(trained, variant="adarl_fusion", fold=0)
    config = predictor.config
    manifest = json.loads((trained / "config.json").read_text())["data"]["manifest"]
    rows = [line.split(",") for line in open(manifest).read().split()[1:]]
    train_files = [str(Path(manifest).parent / r[0]) for r in rows
                   if r[1] in result["train_speakers"]]
    feats, index, _, frames = compute_features(train_files, config, with_index=True, with_frames=True)
    pooled = np.concatenate([feats[i, :, :frames[i]] for i in range(len(feats))], axis=1)
    np.testing.assert_allclose(kept["mean"][:, 0], pooled.mean(1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(kept["std"][:, 0], pooled.std(1), rtol=1e-3, atol=1e-3)
    extract = stand_in("egemaps")[0]
    raw = np.stack([extract(load_audio(f, 16000), 16000) for f in train_files]).astype(np.float64)
    np.testing.assert_allclose(kept["functionals_mean"], raw.mean(0), rtol=1e-5, atol=1e-5)
    # one test file, standardised by hand with the kept statistics
    path = result["utterances"][0]["path"]
    x, _, _, n = compute_features([path], config, with_index=True, with_frames=True)
    for i in range(len(x)):
        x[i, :, :n[i]] = (x[i, :, :n[i]] - kept["mean"]) / kept["std"]
        x[i, :, n[i]:] = 0.0
    u = (extract(load_audio(path, 16000), 16000) - kept["functionals_mean"]) / kept["functionals_std"]
    want = predictor.probs_of_spectrograms(x, np.repeat(u[None], len(x), 0)).mean(0)
    got = predictor.predict_files([path], speakers="training")[0]
    assert got["speaker"] == "(training speakers)"
    np.testing.assert_allclose(list(got["probs"].values()), want, atol=1e-4)
