"""examples/noise_floor_probe.py: the noise it adds sits the asked level below the loudest frame."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "noise_floor_probe.py"


def _probe():
    spec = importlib.util.spec_from_file_location("noise_floor_probe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("level", [20.0, 39.0])
def test_the_noise_floor_is_the_level_below_the_loudest_frame(level):
    t = np.arange(32000) / 16000
    wave = (0.5 * np.sin(2 * np.pi * 220 * t) * (t < 0.5)).astype(np.float32)  # loud, then silent
    out = _probe().with_noise_floor(wave, level, np.random.default_rng(1))
    noise = out - wave
    loudest = 0.5 ** 2 / 2  # a 0.5-amplitude sine's mean power
    assert 10 * np.log10(np.mean(noise ** 2) / loudest) == pytest.approx(-level, abs=0.1)
