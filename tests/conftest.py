"""Test set-up: 8 simulated CPU devices (for the sharding tests), a tiny config, helpers."""

import os

# Must happen before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EMODB = REPO.parent / "shared" / "data" / "emodb"


def tiny_config(variant: str = "adarl"):
    """A config with a 20 x 15 input and a small model: milliseconds a step on CPU."""
    from adarl_jax.config import base_config, validate

    c = base_config()
    c.model.variant = variant
    c.data.segment_s = 3.0
    c.frontend.hop_s = 0.2
    c.frontend.n_fft = 80
    c.frontend.n_bins = 20
    c.frontend.n_frames = 15
    c.model.block_pools = ((5, 5), (1, 1), (1, 1), (1, 1))
    c.model.block_features = ((2, 2), (2, 2), (2, 2), (4, 4))
    c.model.hidden = 8
    c.optim.batch_size = 8
    c.optim.epochs = 2
    c.train.eval_batch_size = 8
    c.train.progress = False
    validate(c)
    return c


@pytest.fixture
def emodb_dir():
    if not (EMODB / "manifest.csv").exists():
        pytest.skip("EmoDB not found beside the checkout (../shared/data/emodb)")
    return EMODB


def make_corpus(root: Path, speakers=(("s1", "M"), ("s2", "F"), ("s3", "M"), ("s4", "F")),
                per_class: int = 2, classes=("anger", "happiness", "sadness", "neutral"),
                seconds=(1.5, 3.4), sr: int = 16000) -> Path:
    """Writes a small CSV-manifest corpus of synthetic wavs; returns the manifest path.

    Each emotion is a tone of its own pitch in noise, the speaker shifts the pitch a little,
    so a model has something to learn.
    """
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rows = ["path,speaker,gender,emotion"]
    for si, (spk, gender) in enumerate(speakers):
        for ci, emo in enumerate(classes):
            for j in range(per_class):
                dur = seconds[(si + ci + j) % len(seconds)]
                t = np.arange(int(dur * sr)) / sr
                f0 = 150 * (ci + 1) * (1 + 0.05 * si)
                wave = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.normal(size=t.shape)
                name = f"wav/{spk}_{emo}_{j}.wav"
                sf.write(root / name, wave.astype(np.float32), sr, subtype="PCM_16")
                rows.append(f"{name},{spk},{gender},{emo}")
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


TINY_OVERRIDES = [
    "--config.frontend.hop_s=0.2", "--config.frontend.n_fft=80", "--config.frontend.n_bins=20",
    "--config.frontend.n_frames=15", "--config.model.block_pools=((5,5),(1,1),(1,1),(1,1))",
    "--config.model.block_features=((2,2),(2,2),(2,2),(4,4))", "--config.model.hidden=8",
    "--config.optim.batch_size=8", "--config.train.eval_batch_size=8",
    "--config.data.max_utterances=0",
]
