"""The building blocks of Table 1, each a small Flax module named for its role in the paper."""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from adarl_jax.model.bn_relu_pool import BatchNormReLUPool

xavier = nn.initializers.xavier_uniform()


def kernel_pair(k) -> tuple[int, int]:
    """A kernel size as (frequency, time): an int k is the square (k, k)."""
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        pair = (int(k), int(k))
    elif isinstance(k, (tuple, list)) and len(k) == 2:
        pair = (int(k[0]), int(k[1]))
    else:
        raise ValueError(f"model.kernel_sizes: {k!r} is neither an int nor a (freq, time) pair")
    if min(pair) < 1:
        raise ValueError(f"model.kernel_sizes: {k!r} has a size below 1")
    return pair


def kernel_pairs(kernel_sizes) -> tuple[tuple[int, int], ...]:
    """Every kernel size as (frequency, time); distinct, since each names its conv."""
    pairs = tuple(kernel_pair(k) for k in kernel_sizes)
    if len(set(pairs)) != len(pairs):
        raise ValueError(f"model.kernel_sizes={pairs} names one kernel shape twice")
    return pairs


def conv_name(pair) -> str:
    """'conv3x5' for a (3, 5) kernel: square kernels keep the names 'conv3x3', 'conv5x5'."""
    kf, kt = kernel_pair(pair)
    return f"conv{kf}x{kt}"


FIRST_CONVS = ("direct", "space_to_depth")


def same_conv(x, kernel):
    """The 'SAME', stride-1 NHWC convolution of x with one (kh, kw, C, O) kernel, as nn.Conv
    computes it (without bias)."""
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def direct_convs(x, kernels):
    """'SAME', stride-1 convolutions of x (B, H, W, C) with each kernel (kh, kw, C, O_i),
    concatenated on channels."""
    return jnp.concatenate([same_conv(x, k) for k in kernels], -1)


def _block_taps(k: int) -> np.ndarray:
    """Along one axis, for a kernel of odd size k seen from 2 x 2 blocks: the original tap
    (0..k-1, or k for none) at [block offset, input sub-position, output sub-position]. The
    block offsets run over -m..m, m = ceil((k // 2) / 2): a symmetric block kernel."""
    r = k // 2
    m = -(-r // 2)
    taps = np.full((2 * m + 1, 2, 2), k, np.int32)
    for b in range(-m, m + 1):
        for s in range(2):
            for a in range(2):
                d = 2 * b + s - a  # the input's offset from the output, in samples
                if -r <= d <= r:
                    taps[b + m, s, a] = d + r
    return taps


def centred_kernels(kernels, who: str):
    """The kernels (kh, kw, C, O_i), each zero-padded, centred, to the largest size on each
    axis, concatenated on the output axis: one kernel with the same 'SAME' convolutions.
    Odd sizes only (an even kernel has no centre: 'SAME' pads it unevenly); `who` names the
    caller in the error."""
    sizes = [tuple(k.shape[:2]) for k in kernels]
    if any(n % 2 == 0 for size in sizes for n in size):
        raise ValueError(f"{who} needs odd kernel sizes, got {sizes}")
    size = tuple(max(axis) for axis in zip(*sizes))
    return jnp.concatenate([jnp.pad(k, [((s - n) // 2, (s - n) // 2) for s, n in zip(size, k.shape[:2])]
                                    + [(0, 0), (0, 0)]) for k in kernels], axis=-1)


def _unshuffle(blocks, h: int, w: int):
    """(B, H/2, W/2, 4, O), each position's 4 sub-positions (row-major 2 x 2) on axis 3, as
    (B, H, W, O) cropped to (h, w)."""
    b, h2, w2, _, o = blocks.shape
    y = blocks.reshape(b, h2, w2, 2, 2, o).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h2, 2 * w2, o)[:, :h, :w]


def _space_to_depth_convs(x, kernels):
    """`direct_convs` as one convolution of x's 2 x 2 blocks: (B, H/2, W/2, 4C) against a
    (bh, bw, 4C, 4O) kernel gathered from the kernels (zero where a block tap reaches past a
    kernel), its output's 4 sub-positions spread back to (B, H, W, O). Odd H or W are padded
    with zeros first (what 'SAME' reads there anyway) and cropped after. Returns that and the
    convolution's own output as (B, H/2, W/2, 4, O) (None where H or W is odd: it then holds
    the padding's outputs too)."""
    kernel = centred_kernels(kernels, "model.first_convs='space_to_depth'")
    th, tw = _block_taps(kernel.shape[0]), _block_taps(kernel.shape[1])
    kernel = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index size[i]: a zero tap
    # [bh, bw, sh, sw, ah, aw, C, O] -> [bh, bw, (sh, sw, C), (ah, aw, O)]
    block = kernel[th[:, None, :, None, :, None], tw[None, :, None, :, None, :]]
    bh, bw, c, o = len(th), len(tw), kernel.shape[2], kernel.shape[3]
    block = block.transpose(0, 1, 2, 3, 6, 4, 5, 7).reshape(bh, bw, 4 * c, 4 * o)
    b, h, w, _ = x.shape
    x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    h2, w2 = x.shape[1] // 2, x.shape[2] // 2
    x = x.reshape(b, h2, 2, w2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, h2, w2, 4 * c)
    blocks = same_conv(x, block).reshape(b, h2, w2, 4, o)
    return _unshuffle(blocks, h, w), (None if h % 2 or w % 2 else blocks)


@jax.custom_vjp
def space_to_depth_blocks(x, kernels):
    """`direct_convs` (odd kernel sizes), its forward computed on 2 x 2 blocks of x, where the
    3-channel input of block 1 becomes 12 channels, on which XLA:CPU's convolution runs
    faster at `quick`'s 80 x 60 input on one core (not on two threads, nor at the paper's
    400 x 300; benchmarks/README.md). Returns (the convolutions' output (B, H, W, O), the same
    values before the 4 sub-positions of each 2 x 2 block are spread back, (B, H/2, W/2, 4, O),
    or None where H or W is odd). Reductions over positions (BatchNorm's statistics) read the
    second, so that XLA writes the spread array out only for the ops that need its layout.
    A custom VJP (reverse mode only, no jvp through it): gradients flow through both outputs,
    into `direct_convs`'s gradient (the faster weight gradient on the CPU). The same function
    within float rounding (tests/test_first_conv.py)."""
    return _space_to_depth_convs(x, kernels)


def _s2d_forward(x, kernels):
    return _space_to_depth_convs(x, kernels), (x, kernels)


def _s2d_backward(residuals, cotangents):
    x, kernels = residuals
    g, g_blocks = cotangents
    if g_blocks is not None:
        g = g + _unshuffle(g_blocks, x.shape[1], x.shape[2])
    return jax.vjp(direct_convs, x, kernels)[1](g)


space_to_depth_blocks.defvjp(_s2d_forward, _s2d_backward)


def space_to_depth_convs(x, kernels):
    """`direct_convs` computed on 2 x 2 blocks of x: `space_to_depth_blocks`' first output."""
    return space_to_depth_blocks(x, kernels)[0]


class ConvParameters(nn.Module):
    """An nn.Conv's parameters alone (same names, shapes and initialisers: the same values
    from the same key), for convolutions computed elsewhere (`space_to_depth_blocks`)."""

    features: int
    kernel_size: tuple[int, int]
    use_bias: bool = True

    @nn.compact
    def __call__(self, in_features: int):
        kernel = self.param("kernel", xavier, (*self.kernel_size, in_features, self.features))
        bias = (self.param("bias", nn.initializers.zeros_init(), (self.features,))
                if self.use_bias else None)
        return kernel, bias


class MultiScaleConvBlock(nn.Module):
    """Eq. 10: F_l = p_avg(ReLU(BN({w_1 * F_{l-1}, w_2 * F_{l-1}}))).

    Parallel 'same' convolutions, one per kernel size (frequency, time), e.g. 3x3 and 3x5,
    concatenated on channels, then BatchNorm, ReLU and average pooling with stride equal to
    its size. A kernel size k alone means (k, k). `fused` computes the last three as one op
    with a hand-written gradient (`bn_relu_pool.py`: same function and variables, a faster
    backward); `fused=False` is the plain Flax composition.
    """

    features: Sequence[int]  # output channels of each parallel conv, e.g. (16, 16)
    kernel_sizes: Sequence = (3, 5)  # per conv: (freq, time), or k for (k, k)
    pool: Sequence[int] = (1, 1)  # (freq, time)
    use_bias: bool = True
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32
    fused: bool = True
    convs: str = "direct"  # how the convolutions run: FIRST_CONVS (the same function)

    @nn.compact
    def __call__(self, x, train: bool, convolved=None):
        """`convolved`: the convolutions' concatenated output, computed elsewhere from this
        block's own kernels (`shared_input_convs`); then `x` is not read."""
        x, stats_of = self.convolve(x) if convolved is None else (convolved, None)
        if self.fused:
            return BatchNormReLUPool(self.pool, self.bn_momentum, self.dtype, name="bn")(
                x, train, stats_of)
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                         dtype=self.dtype, name="bn")(x)
        x = nn.relu(x)
        if tuple(self.pool) != (1, 1):
            x = nn.avg_pool(x, tuple(self.pool), strides=tuple(self.pool))
        return x

    def convolve(self, x):
        """The parallel 'SAME' convolutions, concatenated on channels: nn.Conv's, or the same
        function from the same parameters computed on 2 x 2 blocks (`space_to_depth_blocks`).
        Returns (output, what the BatchNorm reads its statistics from: (the output's values
        before the bias in the block convolution's own order, the bias or None without one),
        or None for the output itself)."""
        pairs = kernel_pairs(self.kernel_sizes)
        if self.convs == "direct":
            return jnp.concatenate([
                nn.Conv(f, k, padding="SAME", use_bias=self.use_bias, kernel_init=xavier,
                        dtype=self.dtype, name=conv_name(k))(x)
                for f, k in zip(self.features, pairs)], axis=-1), None
        params = [ConvParameters(f, k, self.use_bias, name=conv_name(k))(x.shape[-1])
                  for f, k in zip(self.features, pairs)]
        y, blocks = space_to_depth_blocks(jnp.asarray(x, self.dtype),
                                          tuple(k.astype(self.dtype) for k, _ in params))
        bias = None
        if self.use_bias:  # nn.Conv's arithmetic: the bias in `dtype`, added after
            bias = jnp.concatenate([b for _, b in params]).astype(self.dtype)
            y = y + bias
        return y, (None if blocks is None else (blocks, bias))


class ConvPathway(nn.Module):
    """A stack of multi-scale blocks: spectrogram -> F_4 (batch, freq, time, channels)."""

    block_features: Sequence[Sequence[int]]
    block_pools: Sequence[Sequence[int]]
    kernel_sizes: Sequence = (3, 5)  # per conv: (freq, time), or k for (k, k)
    use_bias: bool = True
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32
    fused: bool = True
    first_convs: str = "direct"  # how block 1 convolves its (few-channel) input: FIRST_CONVS

    @nn.compact
    def __call__(self, x, train: bool, first_convolved=None):
        """`first_convolved`: block 1's convolutions already applied (`shared_input_convs`)."""
        for i, (features, pool) in enumerate(zip(self.block_features, self.block_pools)):
            x = MultiScaleConvBlock(features, self.kernel_sizes, pool, self.use_bias,
                                    self.bn_momentum, self.dtype, self.fused,
                                    convs=self.first_convs if i == 0 else "direct",
                                    name=f"block{i + 1}")(x, train, first_convolved if i == 0 else None)
        return x


def shared_input_convs(x, blocks, kernel_sizes, dtype) -> list:
    """The parallel 'SAME' convolutions of several blocks that read the same input, as one.

    `blocks`: each block's parameters ({'conv3x3': {'kernel', 'bias'}, 'conv3x5': ...}). Every
    kernel is zero-padded, centred, to the largest (odd) size on each axis and all are
    concatenated on the output axis: one convolution with 64 outputs replaces four with 16.
    Alone, XLA:CPU runs its forward 1.6-3.8x faster than the four; inside the train step it is
    slower (the weight gradient of the wider convolution; benchmarks/README.md), so it is off
    by default. Returns each block's concatenated output, as its own convolutions would give
    (`nn.Conv` arithmetic: inputs, kernel and bias cast to `dtype`, bias added after).
    """
    pairs = kernel_pairs(kernel_sizes)
    kernels, biases, widths = [], [], []
    for block in blocks:
        width = 0
        for pair in pairs:
            conv = block[conv_name(pair)]
            kernels.append(conv["kernel"])
            biases.append(conv["bias"] if "bias" in conv else jnp.zeros(conv["kernel"].shape[-1]))
            width += conv["kernel"].shape[-1]
        widths.append(width)
    y = same_conv(jnp.asarray(x, dtype), centred_kernels(kernels, "shared_input_convs").astype(dtype))
    y = y + jnp.concatenate(biases).astype(dtype)
    return jnp.split(y, np.cumsum(widths)[:-1].tolist(), axis=-1)


class FeatureHead(nn.Module):
    """Eq. 1 / Eq. 3: FC -> ReLU -> BN gives the deep feature, FC gives the logits."""

    hidden: int
    num_classes: int
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Dense(self.hidden, kernel_init=xavier, dtype=self.dtype, name="fc1")(x)
        x = nn.relu(x)
        feature = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                               dtype=self.dtype, name="bn")(x)
        logits = nn.Dense(self.num_classes, kernel_init=xavier, dtype=self.dtype, name="fc2")(feature)
        return feature, logits


class FunctionalsHead(nn.Module):
    """Utterance functionals (B, d) -> BatchNorm (the training statistics, kept for inference)
    -> FC to class logits. Added to a CNN head's logits it is the concatenation of the deep
    feature and the functionals before one linear classifier (the fusion variants)."""

    num_classes: int
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, functionals, train: bool):
        u = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                         dtype=self.dtype, name="bn")(functionals.astype(self.dtype))
        return nn.Dense(self.num_classes, kernel_init=xavier, dtype=self.dtype, name="fc")(u)


# Eq. 2's weights held as one (H, C) kernel, initialised as C separate FC(H, 1) layers would
# be: Xavier over fan-in H and fan-out 1 (the channel axis is a batch of layers, not outputs).
per_channel_xavier = jax.nn.initializers.variance_scaling(1.0, "fan_avg", "uniform", in_axis=-2,
                                                          out_axis=(), batch_axis=-1)
CHANNELWISE_INITS = {"per_channel": per_channel_xavier, "joint": xavier}


class ChannelwiseDense(nn.Module):
    """Eq. 2: f_CFC^k = w_CFC^k . f_TP^{k,:} + b^k, one H-vector per channel k.

    Input (batch, H, C) -> output (batch, C). Table 1 writes it as 64 x FC(8, 1):
    `weight_init` 'per_channel' draws the kernel as 64 independent FC(8, 1) layers would get
    it (Xavier with fan-out 1, variance 2 / (H + 1)); 'joint' treats it as one FC(H, C)
    (fan-out C, variance 2 / (H + C), about 2.8x smaller in scale for 8 x 64).
    """

    dtype: Any = jnp.float32
    weight_init: str = "per_channel"  # per_channel | joint

    @nn.compact
    def __call__(self, x):
        h, c = x.shape[-2:]
        if self.weight_init not in CHANNELWISE_INITS:
            raise ValueError(f"model.channelwise_init={self.weight_init!r}: expected one of "
                             f"{sorted(CHANNELWISE_INITS)}")
        kernel = self.param("kernel", CHANNELWISE_INITS[self.weight_init], (h, c))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        x = x.astype(self.dtype)
        return jnp.einsum("bhc,hc->bc", x, kernel.astype(self.dtype)) + bias.astype(self.dtype)


class DomainAwareAttention(nn.Module):
    """Eq. 4: I^D = sigmoid(FC2(ReLU(FC1(CP(TP(F_4^D)))))), one weight per frequency row.

    Input: domain F_4 (batch, H, W, C). Output: I^D (batch, H) in (0, 1).
    """

    hidden: int = 4
    dtype: Any = jnp.float32
    # what `adarl-jax analyze` replaces (report.attention.AttentionReplaced): a module whose
    # __call__ returns the (batch, H) frequency gate sets this
    produces_attention = True

    @nn.compact
    def __call__(self, domain_f4):
        h = domain_f4.shape[1]
        pooled = domain_f4.mean(axis=2).mean(axis=-1)  # TP then CP -> (batch, H)
        x = nn.relu(nn.Dense(self.hidden, kernel_init=xavier, dtype=self.dtype, name="fc1")(pooled))
        return nn.sigmoid(nn.Dense(h, kernel_init=xavier, dtype=self.dtype, name="fc2")(x))


def embed_domain_attention(emotion_f4, attention):
    """Eq. 5: f_emb^k = diag(I^D) f^k: scales each frequency row of every channel."""
    return emotion_f4 * attention[:, :, None, None].astype(emotion_f4.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def gradient_reversal(x, scale: float):
    """Identity forward; multiplies the gradient by -scale backward (Ganin & Lempitsky)."""
    return x


def _grl_fwd(x, scale):
    return x, None


def _grl_bwd(scale, _, g):
    return (-scale * g,)


gradient_reversal.defvjp(_grl_fwd, _grl_bwd)
