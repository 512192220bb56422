"""The late fusion as a final model: `train --final` of adarl writes the per-speaker and the
global SVMs into its model folder, `Predictor.load` serves CNN + SVMs, and each file's
probabilities are the mean of the CNN's and the SVMs' (the per-speaker SVMs for a speaker
group of at least `global_below` recordings, else the global ones), against a numpy
reimplementation of the SVM's scores. openSMILE is an optional extra: a stand-in extractor
takes its place (as in test_fusion)."""

import io
import json

import numpy as np
import pytest

from adarl_jax import cli
from conftest import TINY_OVERRIDES, make_corpus

D = 12


def stand_in(feature_set):
    """Log magnitudes of the first D bins of the recording's spectrum (the set's name shifts
    them, so the two SVMs differ)."""
    shift = 0.0 if feature_set == "egemaps" else 1.0

    def extract(wave, sample_rate):
        spectrum = np.abs(np.fft.rfft(np.asarray(wave, np.float64), n=2 * D))[:D]
        return (np.log(spectrum + 1e-3) + shift * np.arange(D)).astype(np.float32)

    return extract, f"stand-in {feature_set}", [f"f{i}" for i in range(D)]


def with_stand_in(mp):
    """openSMILE replaced by the stand-in, installed or not (CI installs no [baselines])."""
    import adarl_jax.baselines.opensmile as baselines
    import adarl_jax.data.functionals as functionals
    import adarl_jax.inference.predict as predict

    mp.setattr(functionals, "opensmile_extractor", stand_in)
    mp.setattr(predict, "opensmile_extractor", stand_in)
    mp.setattr(baselines, "opensmile_available", lambda: True)
    mp.setattr(predict, "require", lambda *a: None)


@pytest.fixture(scope="module")
def final(tmp_path_factory):
    root = tmp_path_factory.mktemp("late")
    manifest = make_corpus(root / "corpus")
    workdir = root / "W"
    with pytest.MonkeyPatch.context() as mp:
        with_stand_in(mp)
        mp.setenv("ADARL_JAX_COMPILATION_CACHE", "off")
        rc = cli.main(["train", "--config", "smoke", "--corpus", "csv", "--manifest", str(manifest),
                       "--workdir", str(workdir), "--no-progress", "--workers", "1", *TINY_OVERRIDES,
                       "--config.optim.epochs=1", "--config.model.variant=adarl",
                       "--config.frontend.normalize=speaker", "--final", "--no-report"])
        assert rc == 0
        yield root, workdir / "final" / "adarl"


def reference_probs(npz, prefix, x):
    """libsvm's pairwise votes + confidence -> per-class scores -> softmax, in numpy; `prefix`
    names the SVM in late_fusion.npz ('<set>/' per speaker, '<set>/global_' global)."""
    z = (x - npz[f"{prefix}mean"]) / npz[f"{prefix}scale"]
    dec = z @ npz[f"{prefix}coef"].T + npz[f"{prefix}intercept"]
    k = 4
    votes, conf, pair = np.zeros(k), np.zeros(k), 0
    for i in range(k):
        for j in range(i + 1, k):
            conf[i] += dec[pair]
            conf[j] -= dec[pair]
            votes[i if dec[pair] >= 0 else j] += 1
            pair += 1
    scores = votes + conf / (3 * (np.abs(conf) + 1))
    e = np.exp(scores - scores.max())
    return e / e.sum()


def with_global_below(folder, tmp_path, n):
    """The folder with model.json's `global_below` set to `n`."""
    import shutil

    copy = tmp_path / f"below{n}"
    shutil.copytree(folder, copy)
    meta = json.loads((copy / "model.json").read_text())
    meta["late_fusion"]["global_below"] = n
    (copy / "model.json").write_text(json.dumps(meta))
    return copy


def legacy_copy(folder, tmp_path):
    """The folder as format_version 3 wrote it: no `global_below`, so no global SVMs read."""
    import shutil

    copy = tmp_path / "v3"
    shutil.copytree(folder, copy)
    meta = json.loads((copy / "model.json").read_text())
    del meta["late_fusion"]["global_below"]
    meta["format_version"] = 3
    (copy / "model.json").write_text(json.dumps(meta))
    return copy


def test_the_folder_holds_the_svms_and_records_them(final):
    from adarl_jax.inference.model_folder import LATE_FUSION_FORMAT_VERSION
    from adarl_jax.report.late_fusion import GLOBAL_BELOW

    _, folder = final
    meta = json.loads((folder / "model.json").read_text())
    assert meta["format_version"] == LATE_FUSION_FORMAT_VERSION
    assert meta["late_fusion"]["functionals"] == ["egemaps", "compare"]
    assert meta["late_fusion"]["global_below"] == GLOBAL_BELOW
    assert set(meta["files"]) >= {"late_fusion.npz", "params.npz"}
    assert meta["late_fusion"]["svms"]["egemaps"]["n_fit"] == 32  # every utterance of the 4 speakers
    npz = np.load(io.BytesIO((folder / "late_fusion.npz").read_bytes()))
    for fs in ("egemaps", "compare"):
        assert meta["late_fusion"]["svms"][fs]["global_C"] == float(npz[f"{fs}/global_C"])
        assert not np.allclose(npz[f"{fs}/global_coef"], npz[f"{fs}/coef"])
    assert "late fusion" in (folder / "MODEL.md").read_text()


# name: (speaker rule, the files predicted, the files adapt_to_speaker takes (or None), which
#  SVMs score them, whose moments standardise them for the per-speaker SVMs); `e`: every file
CASES = {
    "call, 5 files": ("call", lambda e: e[:5], None, "global", None),
    "call, 10 files": ("call", lambda e: e[:10], None, "global", None),
    "call, 11 files": ("call", lambda e: e[:11], None, "speaker", "predicted"),
    "call, 11 paths of 10 files": ("call", lambda e: e[:10] + e[:1], None, "global", None),
    "call, every file": ("call", lambda e: e, None, "speaker", "predicted"),
    "training": ("training", lambda e: e[:5], None, "global", None),
    "adapted to 3 files": (None, lambda e: e[:5], lambda e: e[29:32], "global", None),
    "adapted to 12 files": (None, lambda e: e[:5], lambda e: e[20:32], "speaker", "adapted"),
    "adapted to one file named 12 times": (None, lambda e: e[:5], lambda e: e[20:21] * 12, "global", None),
    "adapted to 12 files, then forgotten": ("call", lambda e: e[:5], lambda e: e[20:32], "global", None),
    "global_below 4, call, 5 files": ("call", lambda e: e[:5], None, "speaker", "predicted"),
    "v3 folder, training": ("training", lambda e: e[:5], None, "speaker", "training"),
    "v3 folder, call, 5 files": ("call", lambda e: e[:5], None, "speaker", "predicted"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_predict_averages_the_cnn_and_each_svm(final, case, tmp_path):
    from adarl_jax.data.audio import load_audio
    from adarl_jax.inference.late_fusion import FusedPredictor
    from adarl_jax.inference.predict import Predictor

    root, folder = final
    rule, predicted, adapted, members, moments_of = CASES[case]
    every = sorted(str(p) for p in (root / "corpus" / "wav").glob("*.wav"))
    paths = predicted(every)
    enrolled = adapted(every) if adapted is not None else None
    source = (legacy_copy(folder, tmp_path) if case.startswith("v3") else
              with_global_below(folder, tmp_path, 4) if case.startswith("global_below 4") else folder)
    with pytest.MonkeyPatch.context() as mp:
        with_stand_in(mp)
        p = Predictor.load(source)
        assert isinstance(p, FusedPredictor) and "late fusion" in p.source
        if enrolled is not None:
            p.adapt_to_speaker(enrolled)
            if case.endswith("forgotten"):
                p.adapt_to_speaker()
        fused = p.predict_files(paths, speakers=rule)
        cnn = p.predictor.predict_files(paths, speakers=rule)
        p.adapt_to_speaker()
    npz = np.load(io.BytesIO((folder / "late_fusion.npz").read_bytes()))

    def functionals(fs, files):
        return np.stack([stand_in(fs)[0](load_audio(q, 16000), 16000) for q in files]).astype(np.float64)

    for fs in ("egemaps", "compare"):
        raw = functionals(fs, paths)
        if members == "global":
            x, prefix = raw, f"{fs}/global_"
        else:
            ref = {"predicted": raw, "adapted": functionals(fs, enrolled) if enrolled else None,
                   "training": functionals(fs, every)}[moments_of]
            mean, std = ref.mean(0), ref.std(0) + 1e-8
            if moments_of == "training":  # the kept moments are those of every training recording
                np.testing.assert_allclose(npz[f"{fs}/train_mean"], mean, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(npz[f"{fs}/train_std"], std, rtol=1e-5, atol=1e-6)
            x, prefix = (raw - mean) / std, f"{fs}/"
        for c, row in zip(cnn, x):
            c.setdefault("svm", []).append(reference_probs(npz, prefix, row))
    for f, c in zip(fused, cnn):
        want = (np.array(list(c["probs"].values())) + sum(c["svm"])) / 3
        np.testing.assert_allclose(list(f["probs"].values()), want, atol=2e-6)
        assert f["emotion"] == p.classes[int(np.argmax(want))]


def test_the_global_svm_is_a_scaler_and_linear_svm_on_every_recording(final):
    """Its stored scaler is the mean and population std of every training recording's raw
    functionals (StandardScaler's)."""
    from adarl_jax.data.audio import load_audio

    root, folder = final
    every = sorted(str(p) for p in (root / "corpus" / "wav").glob("*.wav"))
    npz = np.load(io.BytesIO((folder / "late_fusion.npz").read_bytes()))
    for fs in ("egemaps", "compare"):
        raw = np.stack([stand_in(fs)[0](load_audio(q, 16000), 16000) for q in every]).astype(np.float64)
        np.testing.assert_allclose(npz[f"{fs}/global_mean"], raw.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(npz[f"{fs}/global_scale"], raw.std(0), rtol=1e-5, atol=1e-6)


def test_an_altered_svm_file_is_refused_by_name(final, tmp_path):
    import shutil

    from adarl_jax.inference.model_folder import ModelFolderError
    from adarl_jax.inference.predict import Predictor

    _, folder = final
    copy = tmp_path / "m"
    shutil.copytree(folder, copy)
    data = bytearray((copy / "late_fusion.npz").read_bytes())
    data[-10] ^= 0xFF
    (copy / "late_fusion.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match="late_fusion.npz: altered or truncated"):
        Predictor.load(copy)


def test_only_the_speaker_normalised_adarl_gets_the_svms(final):
    from adarl_jax.config import load_config
    from adarl_jax.experiments.final_model import late_fusion_files

    config = load_config("smoke", ["model.variant=backbone", "frontend.normalize=speaker"])
    assert late_fusion_files(config, None, final[0]) == ({}, None)
    config = load_config("smoke", ["model.variant=adarl", "frontend.normalize=segment"])
    assert late_fusion_files(config, None, final[0]) == ({}, None)


@pytest.mark.parametrize("v3", [False, True])
def test_one_recording_gets_the_svms_of_the_training_statistics(final, v3, tmp_path):
    """A speaker group of one recording has no moments of its own: its SVMs' share equals the
    one under `training` (the global SVMs; in a v3 folder the per-speaker ones with the kept
    training moments, which its warning column says)."""
    from adarl_jax.inference.predict import Predictor

    root, folder = final
    path = str(sorted((root / "corpus" / "wav").glob("s1_*.wav"))[0])
    with pytest.MonkeyPatch.context() as mp:
        with_stand_in(mp)
        p = Predictor.load(legacy_copy(folder, tmp_path) if v3 else folder)
        (alone,) = p.predict_files([path], speakers="file")
        (pooled,) = p.predict_files([path], speakers="training")
        cnn_alone, cnn_pooled = (p.predictor.predict_files([path], speakers=s)[0]
                                 for s in ("file", "training"))
    said = alone["warning"] is not None and "training speakers' moments" in alone["warning"]
    assert said == v3
    assert pooled["warning"] is None or "moments" not in pooled["warning"]
    svm_alone = 3 * np.array(list(alone["probs"].values())) - np.array(list(cnn_alone["probs"].values()))
    svm_pooled = 3 * np.array(list(pooled["probs"].values())) - np.array(list(cnn_pooled["probs"].values()))
    np.testing.assert_allclose(svm_alone, svm_pooled, atol=2e-5)


def test_a_bad_global_below_is_refused_by_name(final, tmp_path):
    import shutil

    from adarl_jax.inference.model_folder import ModelFolderError
    from adarl_jax.inference.predict import Predictor

    copy = tmp_path / "m"
    shutil.copytree(final[1], copy)
    meta = json.loads((copy / "model.json").read_text())
    meta["late_fusion"]["global_below"] = "eleven"
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFolderError, match=r"model.json: late_fusion.global_below is 'eleven'"):
        Predictor.load(copy)


def test_without_opensmile_a_fused_folder_says_what_to_install(final, monkeypatch):
    import sys

    from adarl_jax.extras import MissingExtraError
    from adarl_jax.inference.predict import Predictor

    import adarl_jax.inference.predict as predict
    from adarl_jax.extras import require

    monkeypatch.setattr(predict, "require", require)  # the module fixture's stand-in undone
    monkeypatch.setitem(sys.modules, "opensmile", None)  # an import of it now fails
    with pytest.raises(MissingExtraError, match=r"late fusion in .*adarl.*pip install 'adarl-jax\[baselines\]'"):
        Predictor.load(final[1])
