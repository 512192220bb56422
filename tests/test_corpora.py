"""corpora.py: each corpus's naming conventions, manifests and their failure modes."""

import csv
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from adarl_jax.data.corpora import (
    CorpusError,
    Utterance,
    load_corpus,
    read_emodb,
    read_iemocap,
    read_manifest,
    read_ravdess,
    select_classes,
    stratified_subset,
)

EMODB = Path(__file__).resolve().parents[2] / "shared" / "data" / "emodb"


def touch_wav(path: Path, seconds=0.05):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * 16000), np.float32), 16000)
    return path


def by_name(utterances):
    return {os.path.basename(u.path): u for u in utterances}


# --- EmoDB -----------------------------------------------------------------------------------


def test_emodb_reads_speaker_gender_emotion_from_file_names(tmp_path, caplog):
    for name in ["03a01Wa.wav", "08b02Tc.wav", "10a04Lb.wav", "16b10Fd.wav", "09a05Nb.wav",
                 "13a07Ea.wav", "15b03Ac.wav"]:
        touch_wav(tmp_path / "wav" / name)
    touch_wav(tmp_path / "wav" / "notes_take2.wav")  # not EmoDB naming: skipped with a warning
    (tmp_path / "wav" / "README.txt").write_text("x")
    with caplog.at_level(logging.WARNING):
        utts = read_emodb(tmp_path)
    assert "notes_take2.wav" in caplog.text
    got = {n: (u.speaker, u.gender, u.emotion, u.corpus) for n, u in by_name(utts).items()}
    assert got == {
        "03a01Wa.wav": ("03", "M", "anger", "emodb"),
        "08b02Tc.wav": ("08", "F", "sadness", "emodb"),
        "10a04Lb.wav": ("10", "M", "boredom", "emodb"),
        "16b10Fd.wav": ("16", "F", "happiness", "emodb"),
        "09a05Nb.wav": ("09", "F", "neutral", "emodb"),
        "13a07Ea.wav": ("13", "F", "disgust", "emodb"),
        "15b03Ac.wav": ("15", "M", "fear", "emodb"),
    }
    assert all(os.path.isabs(u.path) for u in utts)
    assert [u.path for u in utts] == sorted(u.path for u in utts)


def test_emodb_files_directly_in_root_and_errors(tmp_path):
    touch_wav(tmp_path / "flat" / "11a01Wa.wav")
    assert [u.speaker for u in read_emodb(tmp_path / "flat")] == ["11"]

    touch_wav(tmp_path / "odd" / "99a01Wa.wav")
    with pytest.raises(CorpusError, match="99"):
        read_emodb(tmp_path / "odd")

    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="empty"):
        read_emodb(tmp_path / "empty")
    with pytest.raises(CorpusError, match="nowhere"):
        read_emodb(tmp_path / "nowhere")


def test_emodb_manifest_disagreement_is_a_warning_and_file_names_win(tmp_path, caplog):
    touch_wav(tmp_path / "wav" / "03a01Wa.wav")
    (tmp_path / "manifest.csv").write_text(
        "path,speaker,gender,emotion\nwav/03a01Wa.wav,03,M,happiness\n"
    )
    with caplog.at_level(logging.WARNING):
        (u,) = read_emodb(tmp_path)
    assert u.emotion == "anger"
    assert "03a01Wa.wav" in caplog.text and "disagrees" in caplog.text


@pytest.mark.skipif(not EMODB.exists(), reason="EmoDB not present")
def test_real_emodb_counts_match_its_source_notes_and_manifest(caplog):
    with caplog.at_level(logging.WARNING):
        utts = read_emodb(EMODB)
    assert "disagrees" not in caplog.text
    assert len(utts) == 339
    assert Counter(u.emotion for u in utts) == {"anger": 127, "happiness": 71, "neutral": 79, "sadness": 62}
    speakers = {u.speaker: u.gender for u in utts}
    assert len(speakers) == 10 and Counter(speakers.values()) == {"M": 5, "F": 5}
    assert read_manifest(EMODB / "manifest.csv") == [
        Utterance(u.path, u.speaker, u.gender, u.emotion, "csv") for u in utts
    ]


# --- RAVDESS ---------------------------------------------------------------------------------


def test_ravdess_speech_only_with_actor_gender(tmp_path):
    files = {
        "Actor_01/03-01-05-02-01-01-01.wav": ("Actor_01", "M", "anger"),
        "Actor_01/03-01-02-01-02-02-01.wav": ("Actor_01", "M", "calm"),
        "Actor_02/03-01-03-01-02-02-02.wav": ("Actor_02", "F", "happiness"),
        "Actor_02/03-01-01-01-01-01-02.wav": ("Actor_02", "F", "neutral"),
        "Actor_24/03-01-08-02-02-01-24.wav": ("Actor_24", "F", "surprise"),
        "Actor_23/03-01-07-01-01-02-23.wav": ("Actor_23", "M", "disgust"),
        "Actor_23/03-01-04-01-01-02-23.wav": ("Actor_23", "M", "sadness"),
        "Actor_23/03-01-06-01-01-02-23.wav": ("Actor_23", "M", "fear"),
    }
    for rel in files:
        touch_wav(tmp_path / rel)
    touch_wav(tmp_path / "Actor_01" / "03-02-05-02-01-01-01.wav")  # song: excluded
    touch_wav(tmp_path / "Actor_02" / "03-02-03-01-02-02-02.wav")  # song: excluded
    utts = read_ravdess(tmp_path)
    got = {os.path.relpath(u.path, tmp_path): (u.speaker, u.gender, u.emotion) for u in utts}
    assert got == files
    assert {u.corpus for u in utts} == {"ravdess"}


def test_ravdess_without_speech_files_names_the_folder(tmp_path):
    touch_wav(tmp_path / "Actor_01" / "03-02-05-02-01-01-01.wav")
    with pytest.raises(CorpusError, match=str(tmp_path)):
        read_ravdess(tmp_path)


# --- IEMOCAP ---------------------------------------------------------------------------------

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def block(start, end, utt, label):
    return (
        f"[{start:.4f} - {end:.4f}]\t{utt}\t{label}\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\n"
        "C-E3:\tAnger;\tFrustration;\t()\n"
        "A-E3:\tval 3; act 2; dom  2;\t()\n"
        "A-F1:\tval 3; act 2; dom  1;\t(mildly aggravated but staying polite, attitude)\n"
        "\n"
    )


def write_dialog(root, session, dialog, labels, missing=()):
    ses = root / f"Session{session}"
    evaluation = ses / "dialog" / "EmoEvaluation"
    evaluation.mkdir(parents=True, exist_ok=True)
    text = HEADER + "".join(block(1.0 + 3 * i, 2.5 + 3 * i, u, lab) for i, (u, lab) in enumerate(labels))
    (evaluation / f"{dialog}.txt").write_text(text)
    for utt, _ in labels:
        if utt not in missing:
            touch_wav(ses / "sentences" / "wav" / dialog / f"{utt}.wav")


def test_iemocap_improvised_four_classes_in_release_layout(tmp_path, caplog):
    write_dialog(tmp_path, 1, "Ses01F_impro01", [
        ("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M001", "ang"), ("Ses01F_impro01_F002", "xxx"),
        ("Ses01F_impro01_M003", "fru"), ("Ses01F_impro01_F004", "hap"), ("Ses01F_impro01_M005", "exc"),
        ("Ses01F_impro01_M006", "sad"), ("Ses01F_impro01_F007", "neu"),
    ], missing={"Ses01F_impro01_F007"})
    write_dialog(tmp_path, 1, "Ses01F_script01_1", [
        ("Ses01F_script01_1_F000", "ang"), ("Ses01F_script01_1_M001", "sad"),
    ])
    write_dialog(tmp_path, 2, "Ses02M_impro03", [
        ("Ses02M_impro03_M000", "sad"), ("Ses02M_impro03_F001", "hap"), ("Ses02M_impro03_M002", "sur"),
    ])
    # the release also has per-evaluator files in subfolders; they are not label files
    cat = tmp_path / "Session1" / "dialog" / "EmoEvaluation" / "Categorical"
    cat.mkdir()
    (cat / "Ses01F_impro01_e2_cat.txt").write_text("Ses01F_impro01_F002 :Anger; ()\n")
    with caplog.at_level(logging.WARNING):
        utts = read_iemocap(tmp_path)
    assert "Ses01F_impro01_F007.wav" in caplog.text  # labelled but no wav: listed in a warning
    got = {os.path.basename(u.path)[:-4]: (u.speaker, u.gender, u.emotion) for u in utts}
    assert got == {
        "Ses01F_impro01_F000": ("Ses01F", "F", "neutral"),
        "Ses01F_impro01_M001": ("Ses01M", "M", "anger"),
        "Ses01F_impro01_F004": ("Ses01F", "F", "happiness"),
        "Ses01F_impro01_M006": ("Ses01M", "M", "sadness"),
        "Ses02M_impro03_M000": ("Ses02M", "M", "sadness"),
        "Ses02M_impro03_F001": ("Ses02F", "F", "happiness"),
    }
    u = next(u for u in utts if u.path.endswith("Ses02M_impro03_F001.wav"))
    assert u.path == os.fspath(tmp_path / "Session2" / "sentences" / "wav" / "Ses02M_impro03" / "Ses02M_impro03_F001.wav")
    assert [u.path for u in utts] == sorted(u.path for u in utts)
    assert load_corpus("iemocap", tmp_path) == utts


def test_iemocap_without_sessions_or_labels_fails_naming_folder(tmp_path):
    with pytest.raises(CorpusError, match="Session"):
        read_iemocap(tmp_path)
    write_dialog(tmp_path, 1, "Ses01F_script01_1", [("Ses01F_script01_1_F000", "ang")])
    with pytest.raises(CorpusError, match=str(tmp_path)):
        read_iemocap(tmp_path)


# --- CSV manifests ---------------------------------------------------------------------------


def write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_manifest_normalises_gender_and_emotion_aliases(tmp_path):
    for n in range(7):
        touch_wav(tmp_path / "audio" / f"u{n}.wav")
    m = write_csv(tmp_path / "m.csv", ["path", "speaker", "gender", "emotion", "extra"], [
        ["audio/u0.wav", "s1", "male", "angry", "x"],
        ["audio/u1.wav", "s1", "m", "HAP", "x"],
        ["audio/u2.wav", "s2", "Female", "neu", "x"],
        ["audio/u3.wav", "s2", "F", "sad", "x"],
        ["audio/u4.wav", "s2", "f", "", "x"],
        ["audio/u5.wav", "s3", "M", "Contempt", "x"],
        ["audio/u6.wav", "s3", "M", "happy", "x"],
    ])
    got = {os.path.basename(u.path): (u.speaker, u.gender, u.emotion) for u in read_manifest(m)}
    assert got == {
        "u0.wav": ("s1", "M", "anger"), "u1.wav": ("s1", "M", "happiness"),
        "u2.wav": ("s2", "F", "neutral"), "u3.wav": ("s2", "F", "sadness"),
        "u4.wav": ("s2", "F", None), "u5.wav": ("s3", "M", "contempt"),
        "u6.wav": ("s3", "M", "happiness"),
    }


def test_manifest_paths_relative_to_given_root(tmp_path):
    touch_wav(tmp_path / "data" / "a.wav")
    m = write_csv(tmp_path / "elsewhere.csv", ["path", "speaker", "gender", "emotion"], [["a.wav", "s", "F", "sad"]])
    (u,) = read_manifest(m, root=tmp_path / "data")
    assert u.path == os.fspath(tmp_path / "data" / "a.wav")
    (u2,) = load_corpus("csv", tmp_path / "data", manifest=os.fspath(m))
    assert u2.path == u.path


def test_manifest_missing_columns_are_named(tmp_path):
    m = write_csv(tmp_path / "m.csv", ["path", "speaker", "label"], [["a.wav", "s", "sad"]])
    with pytest.raises(CorpusError) as info:
        read_manifest(m)
    assert "gender" in str(info.value) and "emotion" in str(info.value)
    assert "label" in str(info.value)  # says what it found instead


@pytest.mark.parametrize("bad_path", ["../../etc/passwd", "audio/../../outside.wav", "/etc/passwd"])
def test_manifest_refuses_paths_that_escape_root(tmp_path, bad_path):
    root = tmp_path / "corpus"
    touch_wav(root / "audio" / "ok.wav")
    touch_wav(tmp_path / "outside.wav")
    m = write_csv(root / "manifest.csv", ["path", "speaker", "gender", "emotion"], [
        ["audio/ok.wav", "s", "F", "sad"], [bad_path, "s", "F", "sad"],
    ])
    with pytest.raises(CorpusError, match="outside") as info:
        read_manifest(m)
    assert bad_path in str(info.value)


def test_manifest_absolute_path_inside_root_is_fine(tmp_path):
    wav = touch_wav(tmp_path / "a.wav")
    m = write_csv(tmp_path / "m.csv", ["path", "speaker", "gender", "emotion"], [[os.fspath(wav), "s", "F", "sad"]])
    assert read_manifest(m)[0].path == os.fspath(wav)


def test_manifest_speaker_with_two_genders_is_named(tmp_path):
    touch_wav(tmp_path / "a.wav")
    touch_wav(tmp_path / "b.wav")
    m = write_csv(tmp_path / "m.csv", ["path", "speaker", "gender", "emotion"], [
        ["a.wav", "spk7", "F", "sad"], ["b.wav", "spk7", "M", "sad"],
    ])
    with pytest.raises(CorpusError, match="spk7"):
        read_manifest(m)


def test_manifest_bad_gender_names_the_line(tmp_path):
    touch_wav(tmp_path / "a.wav")
    touch_wav(tmp_path / "b.wav")
    m = write_csv(tmp_path / "m.csv", ["path", "speaker", "gender", "emotion"], [
        ["a.wav", "s", "F", "sad"], ["b.wav", "s", "x", "sad"],
    ])
    with pytest.raises(CorpusError, match="line 3") as info:
        read_manifest(m)
    assert "'x'" in str(info.value)


def test_manifest_missing_files_are_skipped_then_all_missing_fails(tmp_path, caplog):
    touch_wav(tmp_path / "a.wav")
    m = write_csv(tmp_path / "m.csv", ["path", "speaker", "gender", "emotion"], [
        ["a.wav", "s", "F", "sad"], ["gone.wav", "s", "F", "sad"],
    ])
    with caplog.at_level(logging.WARNING):
        assert len(read_manifest(m)) == 1
    assert "gone.wav" in caplog.text
    m2 = write_csv(tmp_path / "m2.csv", ["path", "speaker", "gender", "emotion"], [["gone.wav", "s", "F", "sad"]])
    with pytest.raises(CorpusError, match=str(tmp_path)):
        read_manifest(m2)


# --- dispatch and class selection ------------------------------------------------------------


def test_load_corpus_dispatch_and_unknown_name(tmp_path):
    touch_wav(tmp_path / "wav" / "03a01Wa.wav")
    write_csv(tmp_path / "manifest.csv", ["path", "speaker", "gender", "emotion"], [["wav/03a01Wa.wav", "03", "M", "W"]])
    assert load_corpus("emodb", tmp_path)[0].emotion == "anger"
    assert load_corpus("csv", tmp_path)[0].emotion == "w"  # custom labels kept, lowercased
    with pytest.raises(CorpusError) as info:
        load_corpus("savee", tmp_path)
    for name in ("savee", "emodb", "ravdess", "iemocap", "csv"):
        assert name in str(info.value)


def _u(i, emotion, speaker="s", gender="F"):
    return Utterance(f"/x/{i}.wav", speaker, gender, emotion, "t")


def test_select_classes_keeps_unlabelled_and_names_absent_classes():
    utts = [_u(0, "anger"), _u(1, "boredom"), _u(2, None), _u(3, "sadness"), _u(4, "anger")]
    kept = select_classes(utts, ("anger", "sadness"))
    assert [u.path for u in kept] == ["/x/0.wav", "/x/2.wav", "/x/3.wav", "/x/4.wav"]
    with pytest.raises(CorpusError) as info:
        select_classes(utts, ("anger", "happiness"))
    msg = str(info.value)
    assert "happiness" in msg and "boredom" in msg and "sadness" in msg


def test_stratified_subset_spreads_over_speakers_and_classes():
    utts = [_u(10 * s + i, ("anger", "sadness")[i % 2], f"s{s}") for s in range(4) for i in range(6)]
    sub = stratified_subset(utts, 8)
    assert len(sub) == 8
    assert Counter(u.speaker for u in sub) == {f"s{s}": 2 for s in range(4)}
    assert Counter(u.emotion for u in sub) == {"anger": 4, "sadness": 4}
    assert stratified_subset(utts, 0) == utts and stratified_subset(utts, 8) == sub


def test_manifest_unknown_emotion_labels_are_listed_with_their_lines(tmp_path, caplog):
    for name in "abcd":
        touch_wav(tmp_path / f"{name}.wav")
    m = write_csv(tmp_path / "m.csv", ["path", "speaker", "gender", "emotion"], [
        ["a.wav", "s", "F", "angry"], ["b.wav", "s", "F", "Angyr"], ["c.wav", "s", "F", ""],
        ["d.wav", "s", "F", "frustrated"],
    ])
    with caplog.at_level(logging.WARNING, logger="adarl_jax.data.corpora"):
        utts = read_manifest(m)
    assert [u.emotion for u in utts] == ["anger", "angyr", None, "frustrated"]  # kept as written
    warning = caplog.text
    assert "2 row(s) have an unknown emotion label" in warning and os.fspath(m) in warning
    assert "line 3 'Angyr'" in warning and "line 5 'frustrated'" in warning
    assert "line 2" not in warning and "line 4" not in warning  # 'angry' is an alias, '' unlabelled


def test_manifest_with_only_a_header_or_nothing_names_the_manifest(tmp_path):
    header_only = write_csv(tmp_path / "header.csv", ["path", "speaker", "gender", "emotion"], [])
    with pytest.raises(CorpusError, match="has a header but no rows") as info:
        read_manifest(header_only)
    assert os.fspath(header_only) in str(info.value)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CorpusError, match="is empty") as info:
        read_manifest(tmp_path / "empty.csv")
    assert os.fspath(tmp_path / "empty.csv") in str(info.value)
