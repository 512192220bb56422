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
