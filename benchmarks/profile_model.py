"""Where the forward and backward time of the `adarl` model goes, block by block.

  python benchmarks/profile_model.py [--config paper] [--batch 32] [--steps 5] [--impls jax,torch_eager]
  python benchmarks/bench_model.py profile ...                # the same

Per-block times of one pathway (jax, torch NCHW, torch channels_last); block 1 split into its
convolutions and its BatchNorm + ReLU + pool (the library's plain Flax path and its fused op,
`MultiScaleConvBlock(fused=False/True)` given the convolutions' output); block 1 of both
pathways as its separate convolutions vs the one convolution of `layers.shared_input_convs`;
and the whole jax forward and train step, for block 1's share. Prints one JSON line; the
other options are bench_model.py's (`--help` there).
"""

from __future__ import annotations

import re
import sys
from functools import partial

from implementations import header, jax_setup, load_config, random_batch, selected_impls
from measure import loadavg, log, machine_info, median_time

NOTE = ("block times are one pathway's (the model has two of the same shapes); fwd = inference "
        "mode; fwd_bwd = train-mode forward + parameter gradients (+ input gradient after "
        "block 1) of sum(y^2)")


def cmd_profile(args) -> dict:
    """Per-block rows, block 1's split and fused-convolution rows, and the shares of block 1
    in the whole jax forward and train step."""
    config = load_config(args)
    b = config.optim.batch_size
    impls = selected_impls(args)
    torch = sys.modules.get("torch") if any(n.startswith("torch") for n in impls) else None
    out = header(args, "profile", config)
    timeit = partial(median_time, reps=args.steps)
    blocks, block1 = profile_blocks(config, b, torch, timeit)
    out["batch"] = b
    out["per_pathway_blocks"] = blocks
    whole = [k for k in blocks[0] if re.fullmatch(r"(jax|torch|torch_cl)_fwd(_bwd)?_s", k)]
    out["block1_share_of_pathway"] = {k: round(blocks[0][k] / sum(r[k] for r in blocks), 3)
                                      for k in whole}
    out["block1_both_pathways"] = profile_shared_convs(*block1, config.model.kernel_sizes, timeit)
    # The whole model, for the shares: the jitted predict fn and train step.
    batch_np = random_batch(config, b)
    out["jax_model_forward_s"] = timeit(jax_setup(config, batch_np, "infer")[0])
    out["jax_train_step_s"] = timeit(jax_setup(config, batch_np, "train")[0])
    out["jax_block1_x2_share"] = {
        "of_forward": round(2 * blocks[0]["jax_fwd_s"] / out["jax_model_forward_s"], 3),
        "of_train_step": round(2 * blocks[0]["jax_fwd_bwd_s"] / out["jax_train_step_s"], 3)}
    out["note"] = NOTE
    out.update(loadavg_after=loadavg(), machine=machine_info())
    return out


def profile_blocks(config, batch: int, torch, timeit) -> tuple[list[dict], tuple]:
    """One row of times per block of one pathway; also (block 1's variables, its input)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from adarl_jax.model.layers import MultiScaleConvBlock

    m = config.model
    rng = np.random.default_rng(0)
    h, w, c = config.frontend.n_bins, config.frontend.n_frames, 3
    rows = []
    for i, (features, pool) in enumerate(zip(m.block_features, m.block_pools)):
        x = rng.standard_normal((batch, h, w, c), np.float32)
        xj = jnp.asarray(x)
        row = {"block": i + 1, "input": [h, w, c]}
        block = MultiScaleConvBlock(tuple(features), tuple(m.kernel_sizes), tuple(pool))
        variables = block.init(jax.random.key(0, impl="rbg"), x[:1], train=False)
        fwd = jax.jit(lambda v, x: block.apply(v, x, train=False))
        row["jax_fwd_s"] = timeit(lambda: fwd(variables, xj).block_until_ready())

        def loss(params, x, stats=variables["batch_stats"]):
            y, _ = block.apply({"params": params, "batch_stats": stats}, x, train=True,
                               mutable=["batch_stats"])
            return jnp.sum(y * y)

        # Block 1's input is the data: no input gradient, as in the train step.
        grad = jax.jit(jax.grad(loss, argnums=(0,) if i == 0 else (0, 1)))
        row["jax_fwd_bwd_s"] = timeit(lambda: jax.block_until_ready(grad(variables["params"], xj)))
        if i == 0:
            block1 = (variables, xj)
            row.update(profile_block1_split(variables, xj, features, pool, m.kernel_sizes, timeit))
        if torch is not None:
            row.update(profile_torch_block(torch, x, c, features, pool, m.kernel_sizes, i > 0, timeit))
        rows.append(row)
        log(f"  {row}")
        c = sum(features)
        h, w = h // pool[0], w // pool[1]
    return rows, block1


def _conv(x, kernel):
    import jax

    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def profile_block1_split(variables, xj, features, pool, kernel_sizes, timeit) -> dict:
    """Block 1's parallel convs (each, and both) vs its BatchNorm + ReLU + average pool, the
    plain Flax composition and the fused op, each given the convolutions' output."""
    import jax
    import jax.numpy as jnp

    from adarl_jax.model.layers import MultiScaleConvBlock, conv_name, kernel_pairs

    pairs = kernel_pairs(kernel_sizes)
    kernels = [variables["params"][conv_name(k)]["kernel"] for k in pairs]
    convs = jax.jit(lambda x, ks: jnp.concatenate([_conv(x, k) for k in ks], -1))
    row = {"jax_fwd_convs_only_s": timeit(lambda: convs(xj, kernels).block_until_ready())}
    for pair, kernel in zip(pairs, kernels):
        one = jax.jit(_conv)
        row[f"jax_fwd_{conv_name(pair)}_only_s"] = timeit(lambda: one(xj, kernel).block_until_ready())
    y = convs(xj, kernels)
    for name, fused in (("only", False), ("fused", True)):
        block = MultiScaleConvBlock(tuple(features), tuple(kernel_sizes), tuple(pool), fused=fused)

        def bn_relu_pool(y, params, block=block):  # train mode: the batch's own statistics
            return block.apply({**variables, "params": params}, None, train=True, convolved=y,
                               mutable=["batch_stats"])[0]

        fwd = jax.jit(bn_relu_pool)
        ct = jax.random.normal(jax.random.key(0, impl="rbg"),
                               jax.eval_shape(fwd, y, variables["params"]).shape)
        grad = jax.jit(jax.grad(lambda y, p, ct, f=bn_relu_pool: jnp.vdot(f(y, p), ct), argnums=(0, 1)))
        row[f"jax_fwd_bn_relu_pool_{name}_s"] = timeit(
            lambda: fwd(y, variables["params"]).block_until_ready())
        row[f"jax_fwd_bwd_bn_relu_pool_{name}_s"] = timeit(
            lambda: jax.block_until_ready(grad(y, variables["params"], ct)))
    return row


def profile_shared_convs(variables, xj, kernel_sizes, timeit) -> dict:
    """Block 1 of both pathways reads the same input: its separate convs vs one convolution
    holding all of them (`shared_input_convs`), forward and weight gradient."""
    import jax
    import jax.numpy as jnp

    from adarl_jax.model.layers import conv_name, kernel_pairs, shared_input_convs

    pairs = kernel_pairs(kernel_sizes)
    blocks = [variables["params"]] * 2  # both pathways' block 1 (same shapes)

    def separate(blocks, x):
        return jnp.concatenate([_conv(x, b[conv_name(k)]["kernel"]) + b[conv_name(k)]["bias"]
                                for b in blocks for k in pairs], -1)

    def shared(blocks, x):
        return jnp.concatenate(shared_input_convs(x, blocks, pairs, jnp.float32), -1)

    ct = jax.random.normal(jax.random.key(0, impl="rbg"), jax.eval_shape(separate, blocks, xj).shape)
    row = {}
    for name, fn in ((f"{2 * len(pairs)}_convs", separate), ("1_fused_conv", shared)):
        f = jax.jit(fn)
        g = jax.jit(jax.grad(lambda bs, x, ct, fn=fn: jnp.vdot(fn(bs, x), ct)))
        row[f"{name}_fwd_s"] = timeit(lambda: f(blocks, xj).block_until_ready())
        row[f"{name}_weight_grad_s"] = timeit(lambda: jax.block_until_ready(g(blocks, xj, ct)))
    return row


def profile_torch_block(torch, x, c, features, pool, kernel_sizes, input_grad, timeit) -> dict:
    import torch_model

    row = {}
    for cl in (False, True):
        fmt = torch.channels_last if cl else torch.contiguous_format
        tb = torch_model.MultiScaleConvBlock(c, features, kernel_sizes, pool).to(memory_format=fmt)
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
        xt.requires_grad_(input_grad)
        tag = "torch_cl" if cl else "torch"

        def fwd():
            with torch.inference_mode():
                tb.eval()(xt).sum().item()

        def fwd_bwd():
            tb.train()
            tb.zero_grad(set_to_none=True)
            y = tb(xt)
            (y * y).sum().backward()

        row[f"{tag}_fwd_s"] = timeit(fwd)
        row[f"{tag}_fwd_bwd_s"] = timeit(fwd_bwd)
        if not input_grad:  # block 1: its BatchNorm + ReLU + pool alone, input gradient included
            y = torch.cat([conv(xt) for conv in tb.convs], 1).detach().requires_grad_(True)

            def bn_fwd_bwd():
                y.grad = None
                tb.zero_grad(set_to_none=True)
                out = torch.nn.functional.avg_pool2d(torch.relu(tb.bn(y)), tb.pool, tb.pool)
                out.backward(torch.ones_like(out))

            row[f"{tag}_fwd_bwd_bn_relu_pool_only_s"] = timeit(bn_fwd_bwd)
    return row


if __name__ == "__main__":
    import bench_model

    bench_model.main(["profile", *sys.argv[1:]])
