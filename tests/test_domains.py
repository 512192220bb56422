"""The domain label as a configurable manifest column: any number of values, or none at all for
the variants without a domain pathway; its folds, its errors and its saved configs."""

import json
from pathlib import Path

import numpy as np
import pytest

from adarl_jax.config import base_config, config_from_json
from adarl_jax.data.corpora import CorpusError, Utterance, load_corpus
from adarl_jax.data.folds import loso_folds
from adarl_jax.workdir.pinning import pinned_differences
from conftest import tiny_config

CLASSES = ("anger", "happiness", "sadness", "neutral")
AGES = {"s1": "young", "s2": "young", "s3": "adult", "s4": "adult", "s5": "senior", "s6": "senior"}


def write_corpus(root: Path, columns=("age_group",), domain=AGES, per_class: int = 1) -> Path:
    """Tiny wavs (one 3 s segment each) and a manifest with the given domain columns."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rows = [",".join(("path", "speaker", "emotion") + tuple(columns))]
    for si, spk in enumerate(sorted(domain)):
        for ci, emo in enumerate(CLASSES):
            for j in range(per_class):
                t = np.arange(16000 * 2) / 16000
                wave = 0.3 * np.sin(2 * np.pi * 150 * (ci + 1) * (1 + 0.05 * si) * t)
                wave += 0.05 * rng.normal(size=t.shape)
                name = f"wav/{spk}_{emo}_{j}.wav"
                sf.write(root / name, wave.astype(np.float32), 16000, subtype="PCM_16")
                rows.append(",".join([name, spk, emo] + [domain[spk]] * len(columns)))
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def smoke(manifest: Path, variant: str = "adarl", column: str = "age_group",
          values=("young", "adult", "senior")):
    config = tiny_config(variant)
    config.data.corpus = "csv"
    config.data.manifest = str(manifest)
    config.data.domain_column = column
    config.data.genders = tuple(values)
    return config


def test_adarl_trains_on_a_three_valued_domain_with_a_three_way_head(tmp_path):
    from adarl_jax.experiments import loso
    from adarl_jax.data import reading
    from adarl_jax.config import input_shape
    from adarl_jax.train.sharding import make_mesh
    from adarl_jax.train.train_step import create_train_state_from_config
    import jax

    config = smoke(write_corpus(tmp_path / "corpus"))
    results = loso.run(config, tmp_path / "w", folds="0,1", mesh=make_mesh(1), progress=False)
    assert [r["fold"] for r in results] == [0, 1]
    for r in results:
        assert all(len(u["domain_probs"]) == 3 for u in r["utterances"])
    model, state, _ = create_train_state_from_config(config, jax.random.key(0, impl="rbg"), 1)
    out = model.apply(state.variables, np.zeros((2, *input_shape(config)), np.float32), train=False)
    assert out["domain_logits"].shape == (2, 3)
    dataset = reading.load_dataset(config, tmp_path / "w", progress=False)
    expect = [("young", "adult", "senior").index(AGES[u.speaker]) for u in dataset.utterances]
    assert dataset.domain.tolist() == expect


def test_backbone_trains_on_a_manifest_without_a_domain_column(tmp_path):
    from adarl_jax.experiments import loso
    from adarl_jax.data import reading
    from adarl_jax.train.sharding import make_mesh

    manifest = write_corpus(tmp_path / "corpus", columns=())
    config = smoke(manifest, variant="backbone", column="gender", values=("F", "M"))
    dataset = reading.load_dataset(config, tmp_path / "w", progress=False)
    assert (dataset.domain == -1).all() and (dataset.gender == -1).all()
    results = loso.run(config, tmp_path / "w", folds="0", mesh=make_mesh(1), progress=False)
    assert results[0]["test"]["n"] == len(CLASSES)
    assert all("domain_probs" not in u for u in results[0]["utterances"])


def test_a_variant_with_a_domain_names_the_missing_column_and_the_manifest(tmp_path):
    from adarl_jax.data import reading

    manifest = write_corpus(tmp_path / "corpus", columns=("language",))
    config = smoke(manifest)  # asks for age_group
    with pytest.raises(CorpusError) as info:
        reading.load_dataset(config, tmp_path / "w", progress=False)
    assert "age_group" in str(info.value) and str(manifest) in str(info.value)


def test_a_one_valued_domain_column_is_refused_for_a_domain_variant(tmp_path):
    from adarl_jax.data import reading

    manifest = write_corpus(tmp_path / "corpus", domain={s: "adult" for s in AGES})
    with pytest.raises(CorpusError) as info:
        reading.load_dataset(smoke(manifest, values=("adult",)), tmp_path / "w", progress=False)
    assert "age_group" in str(info.value) and str(manifest) in str(info.value)
    assert "one value" in str(info.value)
    # the backbone uses no domain: the same manifest is fine
    dataset = reading.load_dataset(smoke(manifest, "backbone", values=("adult",)), tmp_path / "w2",
                                progress=False)
    assert set(dataset.domain.tolist()) == {0}


def test_empty_domain_values_are_listed_by_line(tmp_path):
    manifest = write_corpus(tmp_path / "corpus")
    lines = manifest.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ","
    lines[5] = lines[5].rsplit(",", 1)[0] + ",  "
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError) as info:
        load_corpus("csv", "", str(manifest), domain_column="age_group")
    message = str(info.value)
    assert "line 3" in message and "line 6" in message and "age_group" in message
    assert "line 4" not in message


def test_built_in_corpora_keep_gender(tmp_path):
    with pytest.raises(CorpusError, match="gender"):
        load_corpus("emodb", tmp_path, domain_column="age_group")


def _utts(domains: dict[str, list[str]]):
    return [Utterance(f"/c/{s}/{i}.wav", s, d, "anger", "t")
            for s, ds in sorted(domains.items()) for i, d in enumerate(ds)]


def test_folds_draw_per_value_when_the_domain_is_constant_within_each_speaker():
    speakers = {f"s{i}": [v] for i, v in enumerate(["a", "a", "a", "b", "b", "b", "c", "c", "c"])}
    utts = _utts(speakers)
    folds = loso_folds(utts, val_speakers_per_gender=1, seed=5, domain_name="age_group")
    assert len(folds) == 9
    for f in folds:
        assert sorted(speakers[s][0] for s in f.val_speakers) == ["a", "b", "c"]
        assert f.test_speaker not in f.val_speakers
    draws = {tuple(f.val_speakers for f in loso_folds(utts, 1, seed=s)) for s in range(5)}
    assert len(draws) > 1  # the draw depends on the seed


def test_folds_draw_at_random_when_the_domain_varies_within_a_speaker():
    # s0..s5 speak two languages each: one draw from all speakers, k x (number of values)
    speakers = {f"s{i}": ["en", "de"] if i < 6 else ["fr"] for i in range(8)}
    values = {v for ds in speakers.values() for v in ds}
    for f in loso_folds(_utts(speakers), val_speakers_per_gender=1, seed=0):
        assert len(f.val_speakers) == len(values) == 3
        assert f.test_speaker not in f.val_speakers and len(f.train_speakers) == 4
    unknown = _utts({f"s{i}": [None] for i in range(5)})
    assert all(len(f.val_speakers) == 2 for f in loso_folds(unknown, val_speakers_per_gender=2))


def test_a_saved_config_of_an_older_run_loads_as_a_gender_run(tmp_path):
    saved = json.loads(json.dumps(base_config().to_dict(), default=list))
    del saved["data"]["domain_column"]  # written before the field existed
    config = config_from_json(json.dumps(saved))
    assert config.data.domain_column == "gender" and tuple(config.data.genders) == ("F", "M")
    assert pinned_differences(config, base_config()) == []


def _record(fold, speaker, rows, val_rows, domain=None):
    """A result record with 2-d deep features; `domain` = (column, values) or None (an
    older record: `genders` only)."""
    r = {"variant": "adarl", "fold": fold, "test_speaker": speaker, "classes": ["anger", "sadness"],
         "genders": ["F", "M"], "selected_epoch": 0, "test": {"wa": 0.0, "ua": 0.0, "n": 0},
         "val_speakers": ["v"], "train_speakers": [], "val_utterances": [
             {"emotion": e, "gender": g, "deep_feature": x, "probs": [1.0, 0.0]} for e, g, x in val_rows],
         "utterances": [{"emotion": e, "gender": g, "deep_feature": x, "probs": [1.0, 0.0]}
                        for e, g, x in rows]}
    if domain is not None:
        r["domain_column"], r["domains"] = domain[0], list(domain[1])
        r["genders"] = list(domain[1])
    return r


def _table4(records):
    from adarl_jax.report.fold_spaces import gender_center_summary
    from adarl_jax.report.report import summarize, table4_markdown

    summary = summarize(records)
    centres = gender_center_summary(records)
    summary["gender_center_distance"] = centres.pop("distance")
    summary["gender_center"] = centres
    return summary, "\n".join(table4_markdown({"adarl": summary}))


def test_table4_names_the_values_of_another_domain():
    rows = [(0, 0, [0.0, 0.0]), (1, 0, [1.0, 1.0])]
    val = [(0, 1, [3.0, 4.0]), (1, 1, [1.0, 1.0])]
    summary, text = _table4([_record(0, "s1", rows, val, ("age_group", ["young", "old"]))])
    assert "between the young and old class centres (age_group)" in text
    assert "male" not in text and "paper:" not in text
    assert summary["gender_center_distance"]["anger"] == pytest.approx(5.0)  # ||(0,0)-(3,4)||
    assert summary["domain_column"] == "age_group"
    # three values: no pair to measure, said so
    _, three = _table4([_record(0, "s1", rows, val, ("age_group", ["young", "adult", "senior"]))])
    assert "3 values (young, adult, senior)" in three and "| adarl |" not in three


def test_older_records_without_a_domain_key_stay_gender():
    rows = [(0, 0, [0.0, 0.0])]
    val = [(0, 1, [3.0, 4.0])]
    summary, text = _table4([_record(0, "s1", rows, val)])
    assert "between the male and female class centres" in text
    assert "domain_column" not in summary and "domain" not in summary["gender_center"]
