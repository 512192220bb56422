"""folds.py: leave-one-speaker-out folds, validation speakers, and --folds parsing."""

from pathlib import Path

import numpy as np
import pytest

from adarl_jax.data.corpora import Utterance, read_emodb
from adarl_jax.data.folds import loso_folds, parse_folds

EMODB = Path(__file__).resolve().parents[2] / "shared" / "data" / "emodb"


def corpus(n_male=3, n_female=3, per_speaker=4, unlabelled=1):
    utts = []
    for s in range(n_male + n_female):
        gender = "M" if s < n_male else "F"
        for i in range(per_speaker + unlabelled):
            emotion = ("anger", "sadness")[i % 2] if i < per_speaker else None
            utts.append(Utterance(f"/c/spk{s}/{i}.wav", f"spk{s}", gender, emotion, "t"))
    # interleave so that indices are not grouped by speaker
    return utts[::2] + utts[1::2]


def check_fold_partition(utts, folds):
    speaker = np.array([u.speaker for u in utts])
    for f in folds:
        tr, va, te = set(f.train_speakers), set(f.val_speakers), {f.test_speaker}
        assert not (tr & va) and not (tr & te) and not (va & te)
        assert tr | va | te == set(speaker)
        assert set(speaker[f.train]) == tr
        assert set(speaker[f.test]) == te
        assert set(speaker[f.val]) == va
        assert not set(f.train) & set(f.val) and not set(f.train) & set(f.test)
        # the test set is every labelled utterance of the test speaker, and only those
        expect_test = [i for i, u in enumerate(utts) if u.speaker == f.test_speaker and u.emotion is not None]
        assert f.test.tolist() == expect_test
        # training keeps unlabelled utterances (they train the domain pathway)
        expect_train = [i for i, u in enumerate(utts) if u.speaker in tr]
        assert f.train.tolist() == expect_train
        assert all(utts[i].emotion is not None for i in f.val)


def test_each_speaker_is_tested_exactly_once_in_sorted_order():
    utts = corpus()
    folds = loso_folds(utts)
    assert [f.test_speaker for f in folds] == sorted({u.speaker for u in utts})
    assert [f.index for f in folds] == list(range(6))
    check_fold_partition(utts, folds)
    assert all(f.val_speakers == () and len(f.val) == 0 for f in folds)
    # every labelled utterance is tested exactly once over the folds
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == [i for i, u in enumerate(utts) if u.emotion is not None]


def test_validation_speakers_one_per_gender_from_training_speakers():
    utts = corpus(n_male=4, n_female=4)
    gender = {u.speaker: u.gender for u in utts}
    folds = loso_folds(utts, val_speakers_per_gender=1, seed=3)
    check_fold_partition(utts, folds)
    for f in folds:
        assert sorted(gender[s] for s in f.val_speakers) == ["F", "M"]
        assert {gender[s] for s in f.train_speakers} == {"F", "M"}
    again = loso_folds(utts, val_speakers_per_gender=1, seed=3)
    assert [f.val_speakers for f in again] == [f.val_speakers for f in folds]
    draws = {tuple(f.val_speakers for f in loso_folds(utts, 1, seed=s)) for s in range(6)}
    assert len(draws) > 1  # the seed matters
    assert len({f.val_speakers for f in folds}) > 1  # and the fold index is mixed in


def test_two_validation_speakers_per_gender():
    utts = corpus(n_male=4, n_female=4)
    gender = {u.speaker: u.gender for u in utts}
    for f in loso_folds(utts, val_speakers_per_gender=2):
        assert sorted(gender[s] for s in f.val_speakers) == ["F", "F", "M", "M"]
        assert len(f.train_speakers) == 3


def test_impossible_validation_draw_is_an_error():
    utts = corpus(n_male=2, n_female=3)
    # testing a male speaker leaves one other male: it cannot be both validation and training
    with pytest.raises(ValueError, match="gender M"):
        loso_folds(utts, val_speakers_per_gender=1)
    with pytest.raises(ValueError):
        loso_folds(utts, val_speakers_per_gender=-1)


def test_speaker_without_emotion_labels_only_trains():
    utts = corpus() + [Utterance("/c/extra/0.wav", "zz_unlabelled", "F", None, "t")]
    folds = loso_folds(utts, val_speakers_per_gender=1)
    assert "zz_unlabelled" not in [f.test_speaker for f in folds]
    assert all("zz_unlabelled" in f.train_speakers for f in folds)


@pytest.mark.skipif(not EMODB.exists(), reason="EmoDB not present")
def test_real_emodb_ten_folds_with_validation():
    utts = read_emodb(EMODB)
    folds = loso_folds(utts, val_speakers_per_gender=1)
    assert len(folds) == 10
    check_fold_partition(utts, folds)
    assert all(len(f.train_speakers) == 7 for f in folds)


@pytest.mark.parametrize(
    "spec,expected",
    [(None, list(range(10))), ("", list(range(10))), ("all", list(range(10))), (" ALL ", list(range(10))),
     ("0,3", [0, 3]), ("3,0,3", [0, 3]), ("2-5", [2, 3, 4, 5]), ("0, 2-3, 9", [0, 2, 3, 9]), ("7-7", [7])],
)
def test_parse_folds(spec, expected):
    assert parse_folds(spec, 10) == expected


@pytest.mark.parametrize("spec,bad", [("10", "10"), ("0,12", "12"), ("x", "x"), ("1-", "1-"), ("5-2", "5-2"),
                                      ("-1", "-1"), ("0,,1", "''"), ("1.5", "1.5"), ("3-11", "3-11")])
def test_parse_folds_rejects_naming_item_and_count(spec, bad):
    with pytest.raises(ValueError) as info:
        parse_folds(spec, 10)
    assert bad in str(info.value) and "10" in str(info.value)


def test_one_speaker_or_no_labels_is_refused_naming_the_corpus_folder():
    one = [u for u in corpus(n_male=1, n_female=0)]
    with pytest.raises(ValueError, match="LOSO needs at least 2 speakers") as info:
        loso_folds(one, val_speakers_per_gender=1)  # before 'cannot draw validation speakers'
    assert "/c/spk0" in str(info.value) and "'spk0'" in str(info.value)
    unlabelled = [Utterance(u.path, u.speaker, u.gender, None, "t") for u in corpus()]
    with pytest.raises(ValueError, match="no utterance of the corpus in /c has one"):
        loso_folds(unlabelled)
    assert len(loso_folds(corpus(n_male=1, n_female=1))) == 2  # two speakers are enough


def test_config_folds_are_the_configs_draw_of_the_named_folds():
    from adarl_jax.config import base_config
    from adarl_jax.data.folds import config_folds

    utts = corpus(3, 3)
    config = base_config()
    config.train.selection, config.train.val_speakers_per_gender = "val", 1
    config.train.split_seed = 7
    config.data.classes = ("anger", "sadness")  # the corpus's (a fold lacking one is refused)
    got = config_folds(config, utts, "1,4")
    want = loso_folds(utts, 1, 7)
    assert [f.index for f in got] == [1, 4]
    for g, w in zip(got, [want[1], want[4]]):
        assert g.val_speakers == w.val_speakers and len(g.val_speakers) == 2
        np.testing.assert_array_equal(g.train, w.train)
    config.train.selection = "last"  # no selection: no validation speakers drawn
    assert all(f.val_speakers == () for f in config_folds(config, utts))
    assert len(config_folds(config, utts)) == 6
