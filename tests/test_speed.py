"""augment.speeds: every training recording also played faster or slower (speed perturbation),
read, cached, standardised and trained on as its own copy of the corpus."""

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from conftest import make_corpus, tiny_config
from adarl_jax.data.audio import load_audio
from adarl_jax.data.corpora import load_corpus
from adarl_jax.data.dataset import prepare_dataset
from adarl_jax.data.feature_cache import cache_key
from adarl_jax.data.folds import loso_folds
from adarl_jax.data.speed import copy_segments, speed_copies


def am_tone(freq, seconds, rate, speed=1.0):
    """A 3 Hz amplitude-modulated tone played at `speed`, analytic: x(speed * t)."""
    t = speed * np.arange(int(np.ceil(seconds * rate / speed))) / rate
    return 0.3 * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * freq * t)


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_a_recording_played_at_a_speed_is_the_analytic_signal_at_that_speed(tmp_path, speed):
    path = tmp_path / "tone44k.wav"
    sf.write(path, am_tone(1000, 1.0, 44100), 44100, subtype="FLOAT")
    wave = load_audio(path, 16000, speed=speed)
    want = am_tone(1000, 1.0, 16000, speed)
    assert len(wave) == len(want)  # the duration / speed
    middle = slice(2000, -2000)  # away from the filter's edge effects
    np.testing.assert_allclose(wave[middle], want[middle], atol=3e-3)
    with pytest.raises(ValueError, match="speed"):
        load_audio(path, 16000, speed=0.0)


def test_the_cache_key_names_the_speed_only_when_it_is_not_one(tmp_path):
    config, paths = tiny_config(), [str(tmp_path / "a.wav")]
    assert cache_key(config, paths, 1.0) == cache_key(config, paths)
    assert len({cache_key(config, paths, s) for s in (1.0, 0.9, 1.1)}) == 3


def _tone_corpus(root, speed=1.0):
    """Two speakers x two emotions of analytic tones, each file as if played at `speed`."""
    (root / "wav").mkdir(parents=True)
    rows = ["path,speaker,gender,emotion"]
    for si, (spk, gender) in enumerate((("s1", "M"), ("s2", "F"))):
        for ci, emo in enumerate(("anger", "sadness")):
            name = f"wav/{spk}_{emo}.wav"
            sf.write(root / name, am_tone(300 * (ci + 1) + 40 * si, 4.2, 16000, speed), 16000,
                     subtype="FLOAT")
            rows.append(f"{name},{spk},{gender},{emo}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return load_corpus("csv", str(root), "")


def test_a_speed_copy_equals_the_corpus_recorded_at_that_speed(tmp_path):
    """The copy of a corpus at 1.1x against a corpus whose files are the same analytic signals
    written at 1.1x: the same segments, and the same standardised spectrograms but where the
    resampling filter's edges reach."""
    config = tiny_config()
    config.frontend.normalize = "speaker"
    config.augment.speeds = (1.1,)
    dataset = prepare_dataset(config, _tone_corpus(tmp_path / "a"), tmp_path / "cache",
                              progress=False)
    ((copy, segs),) = speed_copies(config, dataset, range(len(dataset.utterances)))
    np.testing.assert_array_equal(segs, np.arange(len(copy.segment_utt)))
    played = prepare_dataset(config, _tone_corpus(tmp_path / "b", 1.1), tmp_path / "cache-b",
                             progress=False)
    assert copy.cache_dir != dataset.cache_dir
    np.testing.assert_array_equal(copy.segment_utt, played.segment_utt)
    np.testing.assert_allclose(copy.segment_start_s, played.segment_start_s, atol=1e-6)
    assert len(copy.segment_utt) < len(dataset.segment_utt)  # 4.2 s (3 s + a 1.2 s tail) -> 3.8 s (tail dropped)
    inner = slice(1, -1)  # the first and last frames see the filter's edges
    diff = np.abs(copy.features[:, :, inner] - played.features[:, :, inner])
    # equal but for the resampler's stopband leakage, which moves the log of the quietest
    # bins (between the tone's bands) a little
    assert diff.mean() < 0.02 and np.quantile(diff, 0.95) < 0.05, (diff.mean(), diff.max())
    # each (speaker, speed) by its own statistics: mean 0 over the speaker's valid frames
    for spk in ("s1", "s2"):
        rows = [i for i, u in enumerate(copy.segment_utt) if copy.utterances[u].speaker == spk]
        frames = np.concatenate([copy.features[i, :, :copy.segment_frames[i]] for i in rows], 1)
        np.testing.assert_allclose(frames.mean(1), 0.0, atol=1e-4)


def test_a_fold_trains_on_its_segments_and_their_speed_copies_alone(tmp_path):
    """The training speakers' copies, labelled as the dataset labels their recordings (matched
    here by path); no validation or test speaker's copy."""
    from adarl_jax.train.trainer import training_set

    config = tiny_config()
    config.frontend.normalize = "speaker"
    config.augment.speeds = (0.9, 1.1)
    manifest = make_corpus(tmp_path / "c", speakers=(("s1", "M"), ("s2", "F"), ("s3", "M"),
                                                     ("s4", "F"), ("s5", "M"), ("s6", "F")),
                           seconds=(1.5, 4.2))
    utterances = load_corpus("csv", str(tmp_path / "c"), str(manifest))
    dataset = prepare_dataset(config, utterances, tmp_path / "cache", progress=False)
    fold = loso_folds(dataset.utterances, val_speakers_per_gender=1)[0]
    trained = {dataset.utterances[i].speaker for i in fold.train}
    assert len(trained) == 3 and fold.test_speaker not in trained  # 1 test, 2 validation
    segs = dataset.subset_segments(fold.train)
    features, rows, emotion, domain, functionals = training_set(config, dataset, fold.train, segs)
    copies = list(speed_copies(config, dataset, fold.train))
    assert len(features) == len(rows) == len(emotion) == len(segs) + sum(len(s) for _, s in copies)
    np.testing.assert_array_equal(features[:len(segs)], dataset.features[segs])
    index = {u.path: i for i, u in enumerate(dataset.utterances)}
    start = len(segs)
    for copy, s in copies:
        assert {u.speaker for u in copy.utterances} == trained
        paths = [copy.utterances[u].path for u in copy.segment_utt[s]]
        assert set(paths) == {dataset.utterances[i].path for i in fold.train}
        np.testing.assert_array_equal(features[start:start + len(s)], copy.features[s])
        own = np.array([index[p] for p in paths])
        np.testing.assert_array_equal(emotion[start:start + len(s)], dataset.emotion[own])
        np.testing.assert_array_equal(domain[start:start + len(s)], dataset.gender[own])
        start += len(s)
    # the slower copy has more segments than the faster one (4.2 s files: 4.7 s, 3.8 s)
    assert len(copies[0][1]) > len(copies[1][1])
    assert functionals is None


@pytest.mark.parametrize("normalize", ["utterance", "segment"])
def test_a_copy_is_cut_and_standardised_as_the_corpus_is(tmp_path, normalize):
    """With the trim, overlapping segments and per-recording (or per-segment) statistics: the
    copy's recordings each standardised by their own statistics, cut as the config cuts."""
    from adarl_jax.data.audio import segment_count

    config = tiny_config()
    config.frontend.normalize = normalize
    config.data.update(trim_db=40.0, segment_hop_s=1.0)
    config.augment.speeds = (0.9,)
    dataset = prepare_dataset(config, _tone_corpus(tmp_path / "a"), tmp_path / "cache",
                              progress=False)
    ((copy, segs),) = speed_copies(config, dataset, range(len(dataset.utterances)))
    n = int(np.ceil(4.2 * 16000 / 0.9))  # a tone is loud throughout: the trim keeps it all
    want = segment_count(n, 16000, 3.0, 1.0, hop_s=1.0)
    assert want > 1 and all((copy.segment_utt == u).sum() == want for u in range(4))
    if normalize == "utterance":
        for u in range(4):
            rows = np.flatnonzero(copy.segment_utt == u)
            frames = np.concatenate([copy.features[i, :, :copy.segment_frames[i]] for i in rows], 1)
            np.testing.assert_allclose(frames.mean(1), 0.0, atol=1e-4)


def test_reading_a_corpus_builds_its_copies_caches_before_any_fold(tmp_path):
    from adarl_jax.data.reading import load_checked_dataset

    config = tiny_config()
    config.data.update(corpus="csv", manifest=str(make_corpus(tmp_path / "c")))
    config.augment.speeds = (0.9, 1.1)
    dataset, _ = load_checked_dataset(config, tmp_path / "W", progress=False)
    folders = {p.name for p in (tmp_path / "W" / "cache").iterdir()}
    keys = {cache_key(config, sorted(u.path for u in dataset.utterances), s)[:16]
            for s in (1.0, 0.9, 1.1)}
    assert folders == keys


def test_a_copy_leaves_out_a_file_it_could_not_use(tmp_path):
    config = tiny_config()
    config.augment.speeds = (1.1,)
    utterances = load_corpus("csv", str(tmp_path / "c"), str(make_corpus(tmp_path / "c")))
    dataset = prepare_dataset(config, utterances, tmp_path / "cache", progress=False)
    ((copy, _),) = speed_copies(config, dataset, range(len(dataset.utterances)))
    keep = copy.segment_utt != 0  # as if the copy had skipped the first file
    fewer = dataclasses.replace(copy, utterances=copy.utterances[1:], features=copy.features[keep],
                                segment_utt=copy.segment_utt[keep] - 1)
    got = copy_segments(dataset, fewer, [0, 1])
    np.testing.assert_array_equal(got, np.flatnonzero(fewer.segment_utt == 0))
    assert fewer.utterances[0].path == dataset.utterances[1].path and len(got)


@pytest.mark.parametrize("speeds", [(1.0,), (0.9, 0.9), (-1.1,), (0.0,), (0.001,), (3.0,),
                                    ("fast",)])
def test_bad_speeds_are_refused_by_name(speeds):
    from adarl_jax.config import validate

    config = tiny_config()
    config.augment.speeds = speeds
    with pytest.raises(ValueError, match="augment.speeds"):
        validate(config)


def test_speeds_are_for_a_spectrogram_only_variant():
    from adarl_jax.config import validate

    config = tiny_config("adarl_fusion")
    config.augment.speeds = (0.9, 1.1)
    with pytest.raises(ValueError, match="spectrogram-only"):
        validate(config)
    config.model.variant = "adarl"
    validate(config)
