"""Preparing a corpus says which files are silent or truncated: kept, but never silently."""

import logging

import numpy as np
import soundfile as sf

from adarl_jax.config import input_shape
from adarl_jax.data.corpora import Utterance
from adarl_jax.data.dataset import prepare_dataset
from conftest import tiny_config

SR = 16000


def zeros_frontend(config):
    """A front end of the config's shape that returns zeros (the warnings come before it)."""
    return lambda waves, lengths: np.zeros((len(waves), *input_shape(config)), np.float32)


def test_silent_and_truncated_files_are_logged_while_preparing(tmp_path, caplog):
    t = np.arange(2 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    files = {"ok.wav": tone, "silent.wav": np.zeros(2 * SR, np.float32), "cut.wav": tone}
    utts = []
    for i, (name, wave) in enumerate(files.items()):
        sf.write(tmp_path / name, wave, SR, subtype="PCM_16")
        utts.append(Utterance(str(tmp_path / name), f"s{i}", "F", "anger", "t"))
    whole = (tmp_path / "cut.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:len(whole) // 2])
    with caplog.at_level(logging.WARNING, logger="adarl_jax.data.dataset"):
        config = tiny_config()
        ds = prepare_dataset(config, utts, tmp_path / "cache", frontend=zeros_frontend(config),
                             progress=False)
    assert len(ds.utterances) == 3 and not ds.skipped  # kept: a warning is not an error
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith(f"{tmp_path / 'silent.wav'}: silent") for line in lines), lines
    assert any(line.startswith(f"{tmp_path / 'cut.wav'}: truncated") for line in lines), lines
    assert not any("ok.wav" in line for line in lines)
