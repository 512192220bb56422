"""The implementations the benchmarks compare, each set up to do one step of the `adarl` model.

jax: the jitted adarl_jax train step / predict fn (`train_step.make_train_step`,
`inference.make_predict_fn`, `sharding.jit_train_step`, `jit_predict`) on a 1-device mesh,
donated state, batch already on the device; its variants are config.model overrides
(`JAX_IMPLS`). torch: benchmarks/torch_model.py, eager or torch.compile, NCHW or channels_last. Each setup returns (run, info);
run() does one step and waits for it.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path

from measure import loadavg

HERE = Path(__file__).resolve().parent
# The jax implementations: config.model overrides of the default model (same function each).
JAX_IMPLS = {
    "jax": {},
    # the plain Flax model: nn.BatchNorm, nn.relu, nn.avg_pool
    "jax_plain": {"fused_bn_pool": False},
    # adarl's two pathways' block-1 convolutions as one (model.shared_first_conv; off by default)
    "jax_shared_conv": {"shared_first_conv": True},
    # block 1's convolutions on the input's 2 x 2 blocks (model.first_convs, quick.py's)
    "jax_s2d": {"first_convs": "space_to_depth"},
    "jax_direct": {"first_convs": "direct"},
    # bfloat16 compute, float32 params: the accelerator option, here on the CPU
    "jax_bf16": {"dtype": "bfloat16"},
}
TORCH_IMPLS = ("torch_eager", "torch_eager_cl", "torch_compile", "torch_compile_nchw")
DEFAULT_IMPLS = ("jax", "torch_eager", "torch_compile")


def load_config(args):
    from adarl_jax.config import load_config as load

    config = load(args.config)
    if args.batch:
        config.optim.batch_size = args.batch
    return config


def random_batch(config, batch_size: int, seed: int = 0) -> dict:
    import numpy as np

    from adarl_jax.config import input_shape

    rng = np.random.default_rng(seed)
    n_cls, n_dom = len(config.data.classes), len(config.data.genders)
    return {"x": rng.standard_normal((batch_size, *input_shape(config)), np.float32),
            "emotion": rng.integers(0, n_cls, batch_size).astype(np.int32),
            "domain": rng.integers(0, n_dom, batch_size).astype(np.int32),
            "weight": np.ones(batch_size, np.float32)}


def model_flops(config) -> dict:
    """Analytic FLOPs of the `adarl` model per segment (2 x MACs of convs and dense layers).

    A train step is forward + backward: the weight gradient costs one forward's worth, the
    input gradient another, except for block 1, whose input (the data) needs no gradient.
    """
    from adarl_jax.model.layers import kernel_pairs

    m = config.model
    h, w, c = config.frontend.n_bins, config.frontend.n_frames, 3
    blocks, pairs = [], kernel_pairs(m.kernel_sizes)
    for features, (ph, pw) in zip(m.block_features, m.block_pools):
        macs = h * w * c * sum(kf * kt * f for f, (kf, kt) in zip(features, pairs))
        blocks.append(2 * macs)
        c = sum(features)
        h, w = h // ph, w // pw
    per_pathway = sum(blocks)
    hid, n_cls, n_dom, att = m.hidden, len(config.data.classes), len(config.data.genders), m.attention_hidden
    dense = 2 * (h * w * c * hid + hid * n_dom  # domain head
                 + h * att + att * h  # attention
                 + h * c + c * hid + hid * n_cls)  # channel-wise FC + emotion head
    forward = 2 * per_pathway + dense
    train = 3 * forward - 2 * blocks[0]  # no input gradient for block 1 of either pathway
    return {"forward_gflop_per_segment": forward / 1e9, "train_gflop_per_segment": train / 1e9,
            "conv_gflop_per_block_per_pathway": [b / 1e9 for b in blocks],
            "block1_share_of_forward": 2 * blocks[0] / forward, "f4_shape": [h, w, c]}


def jax_setup(config, batch_np, mode: str, compiler_options: dict | None = None):
    import jax

    from adarl_jax.train import sharding
    from adarl_jax.train.optim import learning_rate_schedule
    from adarl_jax.train.forward import make_predict_fn
    from adarl_jax.train.train_step import create_train_state_from_config, make_train_step

    config.model.variant = "adarl"
    mesh = sharding.make_mesh(1)
    model, state, tx = create_train_state_from_config(config, jax.random.key(0, impl="rbg"), 100)
    t = time.perf_counter()
    if mode == "train":
        weights = (config.loss.domain_weight, config.loss.emotion_weight, config.loss.center_weight)
        state = sharding.put_replicated(state, mesh)
        batch = jax.block_until_ready(sharding.put_batch(batch_np, mesh))
        step = sharding.jit_train_step(
            make_train_step(model, tx, weights, learning_rate_schedule(config, 100)), mesh)
        compiled = step.lower(state, batch).compile(compiler_options)
        cell = [state]

        def run():
            new_state, metrics = compiled(cell[0], batch)
            cell[0] = jax.block_until_ready(new_state)
            jax.block_until_ready(metrics)
    else:
        params = sharding.put_replicated(state.variables, mesh)
        x = jax.block_until_ready(sharding.put_batch({"x": batch_np["x"]}, mesh)["x"])
        compiled = sharding.jit_predict(make_predict_fn(model), mesh).lower(params, x, None).compile(
            compiler_options)

        def run():
            jax.block_until_ready(compiled(params, x, None))

    info = {"compile_s": round(time.perf_counter() - t, 2)}
    run.hlo_text = compiled.as_text  # the optimised HLO, for profile_ops.py's op names
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    if cost and cost.get("flops"):
        info["xla_cost_gflop"] = round(float(cost["flops"]) / 1e9, 2)
    return run, info


def torch_setup(config, batch_np, mode: str, impl: str):
    import torch

    import torch_model

    channels_last = impl in ("torch_eager_cl", "torch_compile")
    compiled = impl.startswith("torch_compile")
    torch.manual_seed(0)
    model = torch_model.ADARL.from_config(config)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.from_numpy(batch_np["x"]).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    if mode == "train":
        model.train()
        o = config.optim
        opt = torch_model.make_optimizer(model, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum)
        # dynamic=False: one static graph per shape, as jax compiles one program per shape.
        step = torch_model.make_train_step(model, opt, compile=compiled, dynamic=False)
        labels = [torch.from_numpy(batch_np[k]).long() for k in ("emotion", "domain")]
        weight = torch.from_numpy(batch_np["weight"])

        def run():
            step(x, *labels, weight).item()
    else:
        model.eval()
        fwd = torch.compile(model, dynamic=False) if compiled else model

        def run():
            with torch.inference_mode():
                fwd(x)["emotion_logits"].sum().item()

    info = {"channels_last": channels_last}
    if compiled:  # torch.compile is lazy: the first call compiles (timed here, minus a step)
        t = time.perf_counter()
        run()
        info["first_call_s"] = time.perf_counter() - t
    return run, info


def setup(impl, config, batch_np, mode):
    if impl in JAX_IMPLS:
        config = copy.deepcopy(config)
        config.model.update(JAX_IMPLS[impl])
        return jax_setup(config, batch_np, mode)
    if impl in TORCH_IMPLS:
        return torch_setup(config, batch_np, mode, impl)
    raise ValueError(f"unknown impl {impl!r}; known: {', '.join((*JAX_IMPLS, *TORCH_IMPLS))}")


def import_torch(args):
    import torch

    sys.path.insert(0, str(HERE))
    torch.set_num_threads(args.threads or os.cpu_count())
    return torch


def selected_impls(args):
    impls = [s for s in args.impls.split(",") if s]
    if any(i in TORCH_IMPLS for i in impls):
        import_torch(args)
    return impls


def training_allocator() -> bool:
    """The C allocator's setting that the CLI's training processes run with
    (`adarl_jax.cli.runtime.keep_heap_resident`: a step's temporaries stay in the process
    instead of being faulted in afresh every step), so that a benchmark's steps are theirs;
    ADARL_JAX_MALLOC=off measures without it. Call before jax starts; True when it is set."""
    from adarl_jax.cli.runtime import keep_heap_resident

    return keep_heap_resident()


def header(args, bench: str, config) -> dict:
    from adarl_jax.config import input_shape

    return {"bench": bench, "config": args.config, "input": list(input_shape(config)),
            "threads": args.threads or os.cpu_count(),
            "heap_resident": getattr(args, "heap_resident", None), "loadavg_before": loadavg()}
