"""Several corpora in a run (adarl_jax.data.corpus_sources): cross-corpus and multi-corpus folds,
label mapping by name, and the refusals."""

import json
import shutil

import numpy as np
import pytest

from conftest import make_corpus, tiny_config, train_workdir
from adarl_jax.data.corpus_sources import parse_source
from adarl_jax.data.folds import config_folds
from adarl_jax.data.reading import read_utterances
from adarl_jax.data.utterances import CorpusError


def _config(main_manifest, **data):
    c = tiny_config()
    c.data.corpus, c.data.manifest = "csv", str(main_manifest)
    c.data.dir = str(main_manifest.parent)
    for k, v in data.items():
        setattr(c.data, k, v)
    return c


@pytest.fixture
def two_corpora(tmp_path):
    a = make_corpus(tmp_path / "alpha")
    # other speakers, other lengths (so no file of one is a byte copy of the other's), the same
    # speaker names as alpha's first two, and one label the classes do not have
    b = make_corpus(tmp_path / "beta", speakers=(("s1", "F"), ("s2", "M"), ("s9", "F")),
                    seconds=(1.7, 2.9), classes=("anger", "happiness", "sadness", "neutral", "fear"))
    return a, b


def test_cross_corpus_fold_tests_every_speaker_of_the_test_corpus(two_corpora, caplog):
    a, b = two_corpora
    config = _config(a, test=f"csv:{b}")
    config.train.selection, config.train.val_speakers_per_gender = "val", 1
    with caplog.at_level("WARNING"):
        utts = read_utterances(config)
    assert "fear (6)" in caplog.text  # the label outside data.classes, named and dropped
    folds = config_folds(config, utts)
    assert len(folds) == 1
    fold = folds[0]
    assert fold.test_speaker == "beta"
    tested = {utts[i].speaker for i in fold.test}
    assert tested == {"beta_s1", "beta_s2", "beta_s9"}  # tagged: alpha's s1 is another person
    assert len(fold.test) == 3 * 4 * 2  # every labelled utterance of beta, 'fear' dropped
    trained = {utts[i].speaker for i in fold.train} | set(fold.val_speakers)
    assert trained == {"s1", "s2", "s3", "s4"}
    assert len(fold.val_speakers) == 2 and not set(fold.val_speakers) & set(fold.train_speakers)


def test_extra_corpora_train_in_every_fold_and_are_never_tested(two_corpora):
    a, b = two_corpora
    config = _config(a, extra=(f"csv:{b}",))
    config.train.selection, config.train.val_speakers_per_gender = "val", 1
    utts = read_utterances(config)
    folds = config_folds(config, utts)
    assert [f.test_speaker for f in folds] == ["s1", "s2", "s3", "s4"]
    for f in folds:
        assert {"beta_s1", "beta_s2", "beta_s9"} <= set(f.train_speakers)
        assert not any(s.startswith("beta_") for s in f.val_speakers)


def test_the_domain_label_may_be_the_corpus_or_the_corpus_and_the_column(two_corpora):
    from adarl_jax.data.dataset import domain_labels

    a, b = two_corpora
    by = {}
    for how in ("column", "corpus", "corpus_column"):
        config = _config(a, extra=(f"csv:{b}",), domain=how)
        by[how] = {(u.path, u.speaker): u.domain for u in read_utterances(config)}
    keys = list(by["column"])
    assert {by["column"][k] for k in keys} == {"F", "M"}
    corpus_of = {k: ("beta" if k[1].startswith("beta_") else "csv") for k in keys}
    assert all(by["corpus"][k] == corpus_of[k] for k in keys)
    assert all(by["corpus_column"][k] == f"{corpus_of[k]}/{by['column'][k]}" for k in keys)
    config = _config(a, extra=(f"csv:{b}",), domain="corpus")
    with pytest.raises(ValueError, match="beta, csv are not in config.data.genders"):
        domain_labels(config, read_utterances(config))  # the values must be listed
    config.data.genders = ("csv", "beta")
    labels = domain_labels(config, read_utterances(config))
    assert sorted(set(labels.tolist())) == [0, 1]
    # validation speakers are drawn from the main corpus only: no value is the other corpus's
    config.train.selection, config.train.val_speakers_per_gender = "val", 1
    folds = config_folds(config, read_utterances(config))
    assert [len(f.val_speakers) for f in folds] == [1] * 4
    assert not any(s.startswith("beta_") for f in folds for s in f.val_speakers)


def test_refusals_name_what_is_wrong(two_corpora, tmp_path):
    a, b = two_corpora
    with pytest.raises(CorpusError, match="given twice"):
        read_utterances(_config(a, extra=(f"csv:{b}",), test=f"csv:{b}"))
    copy = tmp_path / "copy"
    shutil.copytree(a.parent, copy)
    with pytest.raises(CorpusError, match="same recording.*s1_anger_0.wav"):
        read_utterances(_config(a, test=f"csv:{copy / 'manifest.csv'}"))
    other = make_corpus(tmp_path / "gamma", speakers=(("x", "M"), ("y", "F")), classes=("fear", "disgust"))
    with pytest.raises(CorpusError, match="no class in common"):
        read_utterances(_config(a, test=str(other)))
    with pytest.raises(CorpusError, match="not found"):
        parse_source(str(tmp_path))


def test_parse_source_layouts(two_corpora):
    a, _ = two_corpora
    assert parse_source(str(a)).corpus == "csv" and parse_source(str(a)).tag == "alpha"
    assert parse_source(str(a.parent)).manifest == str(a)
    s = parse_source(f"emodb:{a.parent}")
    assert (s.corpus, s.root, s.manifest) == ("emodb", str(a.parent), "")


def test_a_cross_corpus_run_trains_tests_and_reports(two_corpora, tmp_path):
    a, b = two_corpora
    workdir = train_workdir(tmp_path, folds="0", extra=[f"--test-data=csv:{b}"])
    result = json.loads(next(workdir.glob("adarl/fold_00_beta/result.json")).read_text())
    assert result["test_speaker"] == "beta"
    assert {u["speaker"] for u in result["utterances"]} == {"beta_s1", "beta_s2", "beta_s9"}
    assert result["test"]["n"] == 24
    report = (workdir / "report.md").read_text()
    assert "| adarl | 1 |" in report
    assert np.isfinite(result["test"]["ua"])
