"""The model shipped in the package (adarl_jax/pretrained/emodb): its files are the ones its
model.json records, it stays small, its card quotes the corpus's licence, and it predicts,
from Python and from `adarl-jax predict clip.wav` with no model named."""

import csv
import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from adarl_jax import cli
from adarl_jax.pretrained import DEFAULT, PRETRAINED, pretrained_dir
from adarl_jax.inference.speakers import TRAINING_GROUP
from conftest import EMODB, SR, tone

FILES = ("params.npz", "config.json", "model.json", "train_statistics.npz", "MODEL.md")


@pytest.fixture(scope="module")
def folder():
    return pretrained_dir("emodb")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An EmoDB utterance when the corpus is here, else a synthetic tone."""
    path = EMODB / "wav" / "03a01Fa.wav"
    if path.is_file():
        return path
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, tone(2.5, 220), SR)
    return path


def test_the_shipped_files_are_the_ones_model_json_records(folder):
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == sorted(FILES)
    meta = json.loads((folder / "model.json").read_text())
    for name in ("params.npz", "config.json", "train_statistics.npz"):
        data = (folder / name).read_bytes()
        assert meta["files"][name] == {"bytes": len(data),
                                       "sha256": hashlib.sha256(data).hexdigest()}
    assert sum((folder / n).stat().st_size for n in FILES) < 2 * 1024 * 1024
    config = json.loads((folder / "config.json").read_text())
    # the default recipe, standardised by speaker (launch/pretrained_emodb.sh); one file gets the
    # training speakers' statistics, which the folder keeps
    assert config["data"]["corpus"] == "emodb" and config["frontend"]["normalize"] == "speaker"
    card = (folder / "MODEL.md").read_text()
    assert "CC0" in card and "Known limits" in card and "UA under the statistics a user has" in card


def test_the_shipped_model_predicts(folder, clip, capsys):
    from adarl_jax import Predictor

    assert DEFAULT in PRETRAINED
    p = Predictor.from_pretrained()
    (rec,) = p.predict_files([clip])
    assert rec["error"] is None and rec["emotion"] in p.classes
    assert sum(rec["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert rec["speaker"] == TRAINING_GROUP  # predict's default for a model that keeps them
    wave, rate = sf.read(clip, dtype="float32")
    np.testing.assert_allclose(list(p.predict(wave, rate)["probs"].values()),
                               list(rec["probs"].values()), atol=1e-5)
    assert cli.main(["predict", str(clip), "--no-progress"]) == 0  # no --model: the shipped one
    out = capsys.readouterr()
    (row,) = list(csv.DictReader(out.out.splitlines()))
    assert row["emotion"] == rec["emotion"] and "pretrained model 'emodb'" in out.err
    with pytest.raises(ValueError, match="no pretrained model 'iemocap'"):
        pretrained_dir("iemocap")
