"""The PyTorch model of the benchmarks computes what adarl_jax's `adarl` computes.

With flax's weights copied in, its forward pass (eval and train mode), its loss and one SGD
step agree with adarl_jax's to float32 precision, so the benchmarks compare equal work.
Skipped when torch is not installed (`pip install .[bench]`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import torch_model  # noqa: E402

from adarl_jax.train import losses  # noqa: E402
from adarl_jax.config import input_shape  # noqa: E402
from adarl_jax.train.train_step import create_train_state_from_config, make_train_step  # noqa: E402
from conftest import distinct_axes_config  # noqa: E402

OUTPUT_KEYS = ("emotion_logits", "domain_logits", "deep_feature", "attention")


def _batch(config, n=6, seed=0):
    rng = np.random.default_rng(seed)
    emotion = rng.integers(0, 4, n).astype(np.int32)
    emotion[0] = -1  # a sample with a domain label only
    return {"x": rng.normal(size=(n, *input_shape(config))).astype(np.float32), "emotion": emotion,
            "domain": rng.integers(0, 2, n).astype(np.int32), "weight": np.ones(n, np.float32)}


def _setup(config):
    """(model, train state, optimiser, the torch model holding the state's weights)."""
    model, state, tx = create_train_state_from_config(config, jax.random.key(1, impl="rbg"), 10)
    # Non-trivial running statistics, so eval mode is not the identity BatchNorm.
    rng = np.random.default_rng(7)
    state = state.replace(batch_stats=jax.tree.map(
        lambda a: (a + rng.uniform(-0.2, 0.2, a.shape) if not a.any() else
                   a * rng.uniform(0.5, 1.5, a.shape)).astype(np.float32),  # means 0, vars 1
        state.batch_stats))
    tmodel = torch_model.load_flax_variables(torch_model.ADARL.from_config(config),
                                             jax.device_get(state.variables))
    return model, state, tx, tmodel


def _torch_in(batch):
    x = torch.from_numpy(batch["x"]).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    return x, *(torch.from_numpy(batch[k]).long() if k != "weight" else torch.from_numpy(batch[k])
                for k in ("emotion", "domain", "weight"))


@pytest.mark.parametrize("train", [False, True])
def test_torch_forward_equals_flax(train):
    config = distinct_axes_config()
    model, state, _, tmodel = _setup(config)
    variables, batch = state.variables, _batch(config)
    tmodel.train(train)
    if train:
        out, _ = model.apply(variables, batch["x"], train=True, mutable=["batch_stats"])
    else:
        out = model.apply(variables, batch["x"], train=False)
    x, emotion, domain, weight = _torch_in(batch)
    with torch.no_grad():
        tout = tmodel(x)
        tloss = torch_model.total_loss(tout, emotion, domain, weight)
    assert np.abs(np.asarray(out["domain_logits"])).min() > 1e-3  # not a degenerate all-zero F_4
    for k in OUTPUT_KEYS:
        np.testing.assert_allclose(tout[k].numpy(), np.asarray(out[k]), rtol=1e-4, atol=1e-4, err_msg=k)
    loss, _ = losses.total_loss(out, batch, (1.0, 1.0, 0.5))
    np.testing.assert_allclose(float(tloss), float(loss), rtol=1e-5, atol=1e-5)


def test_torch_sgd_step_equals_flax_step():
    config = distinct_axes_config()
    config.optim.lr = 0.05
    model, state, tx, tmodel = _setup(config)
    variables, batch = state.variables, _batch(config)
    state, _ = jax.jit(make_train_step(model, tx, (1.0, 1.0, 0.5)))(state, batch)

    tmodel.train(True)
    opt = torch_model.make_optimizer(tmodel, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    torch_model.make_train_step(tmodel, opt)(*_torch_in(batch))

    stepped = torch_model.load_flax_variables(torch_model.ADARL.from_config(config),
                                              jax.device_get(state.variables))
    before = dict(_setup_params(config, variables))
    want, got = dict(stepped.named_parameters()), dict(tmodel.named_parameters())
    largest = max(float(np.abs(want[n].detach().numpy() - before[n]).max()) for n in got)
    for name, p in got.items():
        # The update (= lr * (grad + wd * p)) agrees to float32 reduction-order noise.
        d_got = p.detach().numpy() - before[name]
        d_want = want[name].detach().numpy() - before[name]
        if re.search(r"\.convs\.\d+\.bias$", name):
            # A conv bias before BatchNorm has a zero gradient in exact arithmetic: both
            # updates are float32 noise (weight decay on a zero bias adds nothing).
            assert np.abs(before[name]).max() == 0.0, name
            assert max(np.abs(d_got).max(), np.abs(d_want).max()) < 1e-4 * largest, name
            continue
        scale = float(np.abs(d_want).max())
        np.testing.assert_allclose(d_got, d_want, rtol=1e-3, atol=1e-3 * scale + 1e-6, err_msg=name)
    # Running means agree; running variances differ by design (torch: unbiased batch var).
    for name, b in tmodel.named_buffers():
        if name.endswith("running_mean"):
            np.testing.assert_allclose(b.numpy(), dict(stepped.named_buffers())[name].numpy(),
                                       rtol=1e-4, atol=1e-5, err_msg=name)


def _setup_params(config, variables):
    fresh = torch_model.load_flax_variables(torch_model.ADARL.from_config(config),
                                            jax.device_get(variables))
    return {k: v.detach().numpy().copy() for k, v in fresh.named_parameters()}
