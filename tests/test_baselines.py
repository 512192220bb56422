"""baselines.py + linear_svm.py: openSMILE functionals + linear SVM over the neural runs' LOSO folds.

Fast tests inject a fake feature extractor (the dominant frequency of the synthetic tones, a
separable feature); one test calls the real openSMILE on two short files and skips when the
`opensmile` package is not installed.
"""

import _thread
import json
import signal
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from adarl_jax.baselines import opensmile as B
from adarl_jax.baselines import linear_svm
from adarl_jax import metrics
from adarl_jax.data.corpora import load_corpus, select_classes
from adarl_jax.data.folds import loso_folds
from adarl_jax.report.report import summarize, write_report
from adarl_jax.workdir.layout import collect

from conftest import make_corpus, tiny_config, tiny_input_shape

SIX = (("s1", "M"), ("s2", "F"), ("s3", "M"), ("s4", "F"), ("s5", "M"), ("s6", "F"))
FAKE_ID = "fake-peak-v1"


def fake_extract(wave, sr):
    """Peak frequency (Hz) of the first second, log energy, zero crossings: 3 'functionals'."""
    head = wave[:sr]
    peak = float(np.argmax(np.abs(np.fft.rfft(head, n=sr))))
    zc = float(np.mean(np.abs(np.diff(np.sign(head))) > 0))
    return np.array([peak, np.log(np.mean(head ** 2) + 1e-9), zc], np.float32)


class CountingExtractor:
    """Called from the extraction's threads: counts under a lock."""

    def __init__(self, fail=False):
        self.calls, self.fail, self.lock = 0, fail, threading.Lock()

    def __call__(self, wave, sr):
        with self.lock:
            self.calls += 1
        if self.fail:
            raise KeyboardInterrupt  # a kill mid-way: nothing half-written may remain
        return fake_extract(wave, sr)


def corpus_config(tmp_path, speakers=SIX, selection="last", short_file=True):
    """A CSV corpus (one file too short for the spectrogram cache, if asked) and its config."""
    manifest = make_corpus(tmp_path / "corpus", speakers=speakers, per_class=2)
    if short_file:  # 10 ms: fewer samples than min_samples_for(config); both caches skip it
        sf.write(tmp_path / "corpus" / "wav" / "short.wav", np.zeros(160, np.float32), 16000)
        manifest.write_text(manifest.read_text() + "wav/short.wav,s1,M,anger\n")
    c = tiny_config("backbone")
    c.data.corpus = "csv"
    c.data.manifest = str(manifest)
    c.data.dir = ""
    c.train.selection = selection
    return c


def run(config, workdir, **kw):
    kw.setdefault("extractor", fake_extract)
    kw.setdefault("extractor_id", FAKE_ID)
    return B.run_opensmile_svm(config, workdir, "egemaps", progress=False, **kw)


def test_results_feed_the_report_and_score_well(tmp_path):
    config = corpus_config(tmp_path)
    work = tmp_path / "w"
    results = run(config, work)
    assert [r["fold"] for r in results] == list(range(6))
    for r in results:
        path = work / "opensmile_egemaps_svm" / f"fold_{r['fold']:02d}_{r['test_speaker']}" / "result.json"
        assert json.loads(path.read_text()) == json.loads(json.dumps(r))
        assert (path.parent / "model.npz").is_file()
        assert r["variant"] == "opensmile_egemaps_svm" and r["selected_epoch"] is None
        assert r["classes"] == list(config.data.classes) and r["genders"] == list(config.data.genders)
        assert r["test_speaker"] not in r["baseline"]["fit_speakers"]
        assert {u["speaker"] for u in r["utterances"]} == {r["test_speaker"]}
        for u in r["utterances"]:
            assert set(u) >= {"utterance", "path", "speaker", "emotion", "gender", "segments", "probs"}
            assert len(u["probs"]) == 4 and abs(sum(u["probs"]) - 1) < 1e-5
        assert set(r["test"]) == {"n", "wa", "ua"}
    s = summarize(collect(work)["opensmile_egemaps_svm"])
    assert s["n_utterances"] == 48 and len(s["folds"]) == 6
    assert s["wa_pooled"] >= 0.9 and s["ua_pooled"] >= 0.9  # chance is 0.25
    report = write_report(work, figures=False)
    assert report["opensmile_egemaps_svm"]["wa_pooled"] == pytest.approx(s["wa_pooled"])
    text = (work / "report.md").read_text()
    assert "| opensmile_egemaps_svm | 6 |" in text
    assert "| opensmile_egemaps_svm | inner | training speakers (as the CNN) | 5 | - |" in text
    assert report["opensmile_egemaps_svm"]["baseline_fit"]["refit_on_val"] is False


def test_same_utterances_and_folds_as_the_spectrogram_dataset(tmp_path):
    from adarl_jax.data.dataset import prepare_dataset

    config = corpus_config(tmp_path)
    utts = select_classes(load_corpus("csv", "", config.data.manifest), config.data.classes)
    assert any(u.path.endswith("short.wav") for u in utts)

    def frontend(waves, lengths):
        return np.zeros((len(waves), *tiny_input_shape()), np.float32)

    dataset = prepare_dataset(config, utts, tmp_path / "w" / "cache", frontend=frontend, progress=False)
    neural = loso_folds(dataset.utterances)
    results = run(config, tmp_path / "w")  # reads the corpus itself
    assert len(results) == len(neural)
    for f, r in zip(neural, results):
        assert r["test_speaker"] == f.test_speaker and r["train_speakers"] == list(f.train_speakers)
        assert [u["path"] for u in r["utterances"]] == [dataset.utterances[i].path for i in f.test]
        assert [u["utterance"] for u in r["utterances"]] == f.test.tolist()
    table = B.extract_features(config, utts, tmp_path / "w" / "cache", "egemaps", fake_extract, FAKE_ID,
                               progress=False)
    assert [u.path for u in table.utterances] == [u.path for u in dataset.utterances]
    assert [p for p, _ in table.skipped] == [p for p, _ in dataset.skipped]


def test_cache_is_reused_atomic_and_pickle_free(tmp_path):
    config = corpus_config(tmp_path, short_file=False)
    utts = B.corpus_utterances(config)
    cache = tmp_path / "cache"
    crashing = CountingExtractor(fail=True)
    with pytest.raises(KeyboardInterrupt):
        B.extract_features(config, utts, cache, "egemaps", crashing, FAKE_ID, progress=False)
    assert not cache.exists() or not list(cache.iterdir())

    first = CountingExtractor()
    t1 = B.extract_features(config, utts, cache, "egemaps", first, FAKE_ID, progress=False)
    assert first.calls == len(utts) and not t1.from_cache
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and files[0].startswith("opensmile_egemaps_")
    assert {p.rsplit(".", 1)[1] for p in files} == {"json", "npy"}
    np.load(cache / files[1], allow_pickle=False)  # plain array
    json.loads((cache / files[0]).read_text())

    again = CountingExtractor()
    t2 = B.extract_features(config, utts, cache, "egemaps", again, FAKE_ID, progress=False)
    assert again.calls == 0 and t2.from_cache
    np.testing.assert_array_equal(t1.features, t2.features)
    # a subset, reordered, is a different key (file list) -> new cache; another extractor id too
    B.extract_features(config, utts[::-1][:5], cache, "egemaps", fake_extract, FAKE_ID, progress=False)
    B.extract_features(config, utts, cache, "egemaps", fake_extract, "fake-v2", progress=False)
    assert len(list(cache.iterdir())) == 6


def test_threaded_extraction_keeps_each_file_on_its_row(tmp_path, monkeypatch):
    """Files are extracted in several threads and finish out of order (each sleeps a time of
    its own); every row is still its own file's features, the short file skipped by name."""
    from adarl_jax.data import functionals
    from adarl_jax.data.functionals import read_for_functionals

    monkeypatch.setattr(functionals, "available_cores", lambda: [0, 1])
    config = corpus_config(tmp_path)
    utts = B.corpus_utterances(config)
    threads, lock = set(), threading.Lock()

    def scrambled(wave, sr):
        with lock:
            threads.add(threading.get_ident())
        time.sleep(0.02 * (int(abs(wave[:50]).sum() * 1e3) % 4))
        return fake_extract(wave, sr)

    table = B.extract_features(config, utts, tmp_path / "cache", "egemaps", scrambled, FAKE_ID,
                               progress=False)
    assert len(threads) > 1
    assert [p.rsplit("/", 1)[-1] for p, _ in table.skipped] == ["short.wav"]
    assert len(table.utterances) == len(utts) - 1
    for u, row in zip(table.utterances, table.features):
        expected = fake_extract(read_for_functionals(u.path, config), config.data.sample_rate)
        np.testing.assert_array_equal(row, expected)


def test_ctrl_c_stops_the_extraction_without_waiting_for_every_file(tmp_path, monkeypatch):
    """Ctrl-C reaches the main thread while the pool extracts: it stops at once (the files not
    yet started are dropped) and leaves no cache behind."""
    from adarl_jax.data import functionals

    monkeypatch.setattr(functionals, "available_cores", lambda: [0, 1])
    config = corpus_config(tmp_path, short_file=False)
    utts = B.corpus_utterances(config)
    calls, lock = [0], threading.Lock()

    def interrupted(wave, sr):
        with lock:
            calls[0] += 1
            first = calls[0] == 1
        if first:
            _thread.interrupt_main()  # as a SIGINT arriving in the main thread
        time.sleep(0.05)
        return fake_extract(wave, sr)

    cache = tmp_path / "cache"
    # Python's own SIGINT handler, whatever this process inherited (a job started in the
    # background of a non-interactive shell ignores SIGINT, and interrupt_main then does nothing)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            B.extract_features(config, utts, cache, "egemaps", interrupted, FAKE_ID, progress=False)
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert calls[0] < len(utts) / 2
    assert not cache.exists() or not list(cache.iterdir())


def test_trimmed_functionals_describe_the_speech_alone(tmp_path):
    """data.trim_db: a file's functionals are those of its speech without the silence at both
    ends (the extractor is handed exactly the speech here), under a key of its own."""
    config = corpus_config(tmp_path, short_file=False)
    utts = B.corpus_utterances(config)[:3]
    seen = []

    def record(wave, sr):
        seen.append(wave.copy())
        return fake_extract(wave, sr)

    for u in utts:  # a second of near-silence before each file's audio, half a second after
        speech, sr = sf.read(u.path, dtype="float32")
        rng = np.random.default_rng(0)
        sf.write(u.path, np.concatenate([1e-4 * rng.standard_normal(sr), speech,
                                         1e-4 * rng.standard_normal(sr // 2)]).astype(np.float32),
                 sr, subtype="FLOAT")
        seen.append(speech)
    speeches, seen[:] = seen[:], []
    config.data.trim_db = 40.0
    trimmed = B.extract_features(config, utts, tmp_path / "cache", "egemaps", record, FAKE_ID,
                                 progress=False)
    assert len(seen) == len(speeches)  # the files are extracted in threads, in any order
    for speech in speeches:
        # to the end of its last 25 ms frame, its speech and nothing before it
        same = [got for got in seen if len(got) == len(speech) + (-len(speech)) % 400
                and np.allclose(got[:len(speech)], speech, atol=2e-4)]
        assert len(same) == 1
    config.data.trim_db = 0.0
    whole = B.extract_features(config, utts, tmp_path / "cache", "egemaps", fake_extract, FAKE_ID,
                               progress=False)
    assert not whole.from_cache and not np.allclose(whole.features, trimmed.features)


def _table_and_labels(tmp_path):
    config = corpus_config(tmp_path, short_file=False, selection="val")
    config.train.val_speakers_per_gender = 1
    table = B.extract_features(config, B.corpus_utterances(config), tmp_path / "cache", "egemaps",
                               fake_extract, FAKE_ID, progress=False)
    classes = tuple(config.data.classes)
    y = np.array([classes.index(u.emotion) for u in table.utterances])
    spk = np.array([u.speaker for u in table.utterances], dtype=object)
    return table, y, spk


def test_test_speaker_never_influences_the_model(tmp_path):
    """Garbage in the test speaker's features changes nothing but the test predictions."""
    table, y, spk = _table_and_labels(tmp_path)
    for mode, k in (("val", 1), ("inner", 0)):
        for refit in (False, True):
            for fold in loso_folds(table.utterances, k, 0)[:3]:
                spoiled = table.features.copy()
                spoiled[fold.test] = np.random.default_rng(1).normal(0, 1e4, spoiled[fold.test].shape)
                m1, i1 = B.fit_fold(table.features, y, spk, fold, 4, mode, refit_on_val=refit)
                m2, i2 = B.fit_fold(spoiled, y, spk, fold, 4, mode, refit_on_val=refit)
                assert i1 == i2 and fold.test_speaker not in i1["fit_speakers"]
                np.testing.assert_array_equal(m1.coef, m2.coef)
                np.testing.assert_array_equal(m1.mean, m2.mean)


def test_final_fit_uses_the_cnn_speakers_unless_refit_is_asked(tmp_path):
    """Default: the final model is fitted on the training speakers only (the CNN's training
    set), so its standardisation is their mean and garbage in the validation speakers' features
    cannot change it (C fixed); refit_on_val=True fits on training + validation speakers."""
    table, y, spk = _table_and_labels(tmp_path)
    x = table.features
    for fold in loso_folds(table.utterances, 1, 0)[:3]:
        assert len(fold.val_speakers) == 2
        spoiled = x.copy()
        spoiled[fold.val] = np.random.default_rng(2).normal(0, 1e4, spoiled[fold.val].shape)
        m, info = B.fit_fold(x, y, spk, fold, 4, "val")
        assert info["fit_speakers"] == sorted(fold.train_speakers) and info["refit_on_val"] is False
        assert info["n_fit"] == len(fold.train)
        np.testing.assert_allclose(m.mean, x[fold.train].astype(np.float64).mean(0), rtol=1e-6)
        fixed, _ = B.fit_fold(x, y, spk, fold, 4, "fixed", C=0.1)
        fixed_spoiled, _ = B.fit_fold(spoiled, y, spk, fold, 4, "fixed", C=0.1)
        np.testing.assert_array_equal(fixed.coef, fixed_spoiled.coef)

        r, rinfo = B.fit_fold(x, y, spk, fold, 4, "val", refit_on_val=True)
        both = np.concatenate([fold.train, fold.val])
        assert rinfo["fit_speakers"] == sorted(fold.train_speakers + fold.val_speakers)
        assert rinfo["refit_on_val"] is True and rinfo["C"] == info["C"]  # same C, same choice
        np.testing.assert_allclose(r.mean, x[both].astype(np.float64).mean(0), rtol=1e-6)
        refit_spoiled, _ = B.fit_fold(spoiled, y, spk, fold, 4, "fixed", C=0.1, refit_on_val=True)
        assert not np.allclose(refit_spoiled.mean, r.mean)


def test_refit_rule_follows_the_config_and_is_recorded(tmp_path):
    config = corpus_config(tmp_path, short_file=False, selection="val")
    assert config.baselines.refit_on_val is False  # the default: like-for-like with the CNN
    work = tmp_path / "w"
    plain = run(config, work, folds="0,1")
    for r in plain:
        assert r["baseline"]["refit_on_val"] is False
        assert r["baseline"]["fit_speakers"] == sorted(r["train_speakers"])
    config.baselines.refit_on_val = True
    refit = run(config, work, folds="0,1")  # finished under the other rule: refitted
    for r in refit:
        assert r["baseline"]["refit_on_val"] is True
        assert r["baseline"]["fit_speakers"] == sorted(r["train_speakers"] + r["val_speakers"])
    report = write_report(work, figures=False)["opensmile_egemaps_svm"]["baseline_fit"]
    assert report == {"c_select": ["val"], "refit_on_val": True, "fit_speakers_per_fold": [5, 5]}  # 3 + 2
    assert "| val | training + validation speakers | 5 |" in (work / "report.md").read_text()
    path = work / "opensmile_egemaps_svm" / f"fold_00_{refit[0]['test_speaker']}" / "result.json"
    path.write_text(json.dumps(dict(refit[0], marker=1)))
    assert run(config, work, folds="0")[0]["marker"] == 1  # same rule: kept
    old = dict(refit[0], marker=2)  # written before the rule was recorded: judged by fit speakers
    del old["baseline"]["refit_on_val"]
    path.write_text(json.dumps(old))
    assert run(config, work, folds="0")[0]["marker"] == 2
    config.baselines.refit_on_val = False
    assert "marker" not in run(config, work, folds="0")[0]


def test_selection_follows_the_config(tmp_path):
    config = corpus_config(tmp_path, short_file=False, selection="val")
    config.train.val_speakers_per_gender = 1
    results = run(config, tmp_path / "w")
    for r in results:
        assert r["selection"] == "C by val" and len(r["val_speakers"]) == 2
        assert r["baseline"]["C"] in B.C_GRID
        assert set(r["baseline"]["c_scores"]) == {f"{c:g}" for c in B.C_GRID}
        assert r["best_val_ua"] == max(v for v in r["baseline"]["c_scores"].values())
        # the validation speakers' rows (for a late fusion's validation figure): the final
        # model's probabilities, which label them as the C search's SVM of that C did
        assert {u["speaker"] for u in r["val_utterances"]} == set(r["val_speakers"])
        assert metrics.score_utterances(r["val_utterances"], 4)["ua"] == pytest.approx(
            r["best_val_ua"], abs=1e-6)
    fixed = run(config, tmp_path / "w2", c_select="fixed", C=0.5, folds="1,3")
    assert [r["fold"] for r in fixed] == [1, 3]
    assert all(r["baseline"]["C"] == 0.5 and r["baseline"]["c_scores"] is None for r in fixed)


def test_finished_folds_are_not_refitted(tmp_path):
    config = corpus_config(tmp_path, speakers=SIX[:4], short_file=False)
    work = tmp_path / "w"
    first = run(config, work, folds="0")
    path = work / "opensmile_egemaps_svm" / f"fold_00_{first[0]['test_speaker']}" / "result.json"
    marked = dict(first[0], marker=1)
    path.write_text(json.dumps(marked))
    again = run(config, work, folds="0-1")
    assert again[0]["marker"] == 1 and "marker" not in again[1]


def test_linear_model_matches_sklearn(tmp_path):
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    for k in (2, 3, 4):
        x = rng.normal(size=(80, 12)) * rng.uniform(0.1, 10, 12) + rng.normal(size=12)
        y = rng.integers(0, k, 80)
        x[np.arange(80), y] += 2.0
        model = B.fit_svm(x, y, 0.3)
        z = (x - x.mean(0)) / x.std(0)
        ref = SVC(kernel="linear", C=0.3, class_weight="balanced").fit(z, y)
        xt = rng.normal(size=(30, 12)) * 3
        zt = (xt - x.mean(0)) / x.std(0)
        want = ref.decision_function(zt)
        want = np.stack([-want, want], 1) if k == 2 else want
        np.testing.assert_allclose(model.scores(xt), want, atol=1e-6)
        probs = model.probs(xt, 5)
        assert probs.shape == (30, 5) and np.all(probs[:, k:] == 0)
        ties = SVC(kernel="linear", C=0.3, class_weight="balanced", break_ties=k > 2).fit(z, y)
        np.testing.assert_array_equal(probs.argmax(1), ties.predict(zt))
        np.testing.assert_array_equal(probs.argmax(1), linear_svm._predict(ref, zt))
        model.save(tmp_path / f"m{k}.npz")
        np.testing.assert_allclose(B.LinearModel.load(tmp_path / f"m{k}.npz").scores(xt), model.scores(xt))


def test_bad_arguments(tmp_path):
    config = corpus_config(tmp_path, speakers=SIX[:4], short_file=False)
    with pytest.raises(ValueError, match="feature set"):
        B.run_opensmile_svm(config, tmp_path / "w", "mfcc")
    with pytest.raises(ValueError, match="c_select"):
        run(config, tmp_path / "w", c_select="test")
    with pytest.raises(ValueError, match="validation"):
        run(config, tmp_path / "w", c_select="val")  # selection 'last': folds have no val speakers
    with pytest.raises(ValueError, match="extractor_id"):
        B.extract_features(config, [], tmp_path, "egemaps", fake_extract)


@pytest.mark.skipif(not B.opensmile_available(), reason="the opensmile package is not installed")
def test_real_opensmile_on_two_files(tmp_path):
    import opensmile

    manifest = make_corpus(tmp_path / "corpus", speakers=(("s1", "M"),), per_class=1,
                           classes=("anger", "sadness"))
    config = tiny_config("backbone")
    utts = select_classes(load_corpus("csv", "", str(manifest)), ("anger", "sadness"))
    assert len(utts) == 2
    for feature_set, n in (("egemaps", 88), ("compare", 6373)):
        table = B.extract_features(config, utts, tmp_path / "cache", feature_set, progress=False)
        assert table.features.shape == (2, n) and np.all(np.isfinite(table.features))
        assert len(table.feature_names) == n and table.extractor_id.startswith("opensmile ")
        smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, B.FEATURE_SETS[feature_set]),
                                feature_level=opensmile.FeatureLevel.Functionals)
        direct = smile.process_file(utts[0].path).to_numpy()[0]
        np.testing.assert_allclose(table.features[0], direct, rtol=1e-3, atol=1e-3)
        assert not np.allclose(table.features[0], table.features[1])


def test_run_baselines_without_opensmile_skips_with_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(B, "opensmile_available", lambda: False)
    config = corpus_config(tmp_path, speakers=SIX[:4], short_file=False)
    assert B.run_baselines(config, tmp_path / "w") == {}
    assert "pip install 'adarl-jax[baselines]'" in capsys.readouterr().out
    assert not (tmp_path / "w").exists()
