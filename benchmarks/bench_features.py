"""Front-end throughput: the jnp front end against scipy (and torch.stft, if importable).

All three produce the same (n, n_bins, n_frames, 3) multi-window log spectrogram, z-scored per
segment and channel over its valid frames (the colormap kind is timed for jnp alone). Prints one
JSON line: utterances per second for each, and the jnp front end's speed-up over each.

  python benchmarks/bench_features.py                     # 256 x 3 s, the paper's config
  python benchmarks/bench_features.py --n 64 --batch 16 --config-overrides frontend.n_fft=800

Utterances are the first 3 s of EmoDB wavs when ../shared/data/emodb is beside the checkout
(shorter ones zero-padded, with their true lengths), else white noise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import scipy.signal  # noqa: E402

from adarl_jax.data import frontend  # noqa: E402
from adarl_jax.config import load_config  # noqa: E402


def load_utterances(n: int, spec: frontend.FrontendSpec, segment: int, seed: int = 0):
    """(n, segment) float32 waves and their lengths: EmoDB if present, else noise."""
    wav_dir = REPO.parent / "shared" / "data" / "emodb" / "wav"
    files = sorted(wav_dir.glob("*.wav")) if wav_dir.is_dir() else []
    waves = np.zeros((n, segment), np.float32)
    lengths = np.full(n, segment, np.int32)
    if files:
        import soundfile as sf

        for i in range(n):
            wave, rate = sf.read(files[i % len(files)], dtype="float32")
            if rate != spec.sample_rate:
                raise SystemExit(f"{files[i % len(files)]}: {rate} Hz, expected {spec.sample_rate}")
            wave = wave[:segment]
            waves[i, :len(wave)] = wave
            lengths[i] = len(wave)
        return waves, lengths, f"emodb ({len(files)} files)"
    waves[:] = np.random.default_rng(seed).standard_normal((n, segment))
    return waves, lengths, "white noise"


def scipy_frontend(waves, lengths, spec: frontend.FrontendSpec, dtype=np.float64):
    """The multi-window front end in numpy/scipy (ShortTimeFFT), batched over axis 0."""
    n_valid = np.clip(-(-lengths // spec.hop), 1, spec.n_frames)
    valid = np.arange(spec.n_frames)[None, :] < n_valid[:, None]  # (B, T)
    keep = np.arange(waves.shape[1])[None, :] < lengths[:, None]
    x = np.where(keep, waves, 0).astype(dtype, copy=False)
    channels = []
    for w in spec.windows:
        window = scipy.signal.get_window("hamming", w).astype(dtype)
        stft = scipy.signal.ShortTimeFFT(window, hop=spec.hop, fs=spec.sample_rate, mfft=spec.n_fft)
        spec_ = stft.stft(x, p0=0, p1=spec.n_frames, axis=-1)[:, :spec.n_bins]  # (B, F, T)
        log = np.log(np.maximum(np.abs(spec_), spec.log_floor))
        m = valid[:, None, :]
        count = m.sum(axis=(1, 2), keepdims=True) * spec.n_bins
        mean = np.where(m, log, 0).sum(axis=(1, 2), keepdims=True) / count
        var = np.where(m, (log - mean) ** 2, 0).sum(axis=(1, 2), keepdims=True) / count
        channels.append(np.where(m, (log - mean) / (np.sqrt(var) + spec.zscore_eps), 0))
    return np.stack(channels, axis=-1)


def torch_frontend(torch, waves, lengths, spec: frontend.FrontendSpec):
    """The same with torch.stft (center=True puts frame t's centre at t*hop, as ours)."""
    valid = torch.arange(spec.n_frames)[None, :] < torch.clamp(
        (lengths + spec.hop - 1) // spec.hop, 1, spec.n_frames)[:, None]
    x = torch.where(torch.arange(waves.shape[1])[None, :] < lengths[:, None], waves, 0.0)
    channels = []
    for w in spec.windows:
        X = torch.stft(x, n_fft=spec.n_fft, hop_length=spec.hop, win_length=w,
                       window=torch.hamming_window(w, periodic=True), center=True,
                       pad_mode="constant", return_complex=True)[:, :spec.n_bins, :spec.n_frames]
        log = torch.log(torch.clamp(X.abs(), min=spec.log_floor))
        m = valid[:, None, :]
        count = m.sum(dim=(1, 2), keepdim=True) * spec.n_bins
        mean = torch.where(m, log, 0.0).sum(dim=(1, 2), keepdim=True) / count
        var = torch.where(m, (log - mean) ** 2, 0.0).sum(dim=(1, 2), keepdim=True) / count
        channels.append(torch.where(m, (log - mean) / (var.sqrt() + spec.zscore_eps), 0.0))
    return torch.stack(channels, dim=-1)


def throughputs(runs: dict, batches: dict, repeats: int) -> dict:
    """Utterances per second of each run over all its batches: the best of `repeats` passes.

    Passes are interleaved (run A, run B, ..., then again) so that every implementation sees
    the same share of whatever else the machine is doing.
    """
    for name, run in runs.items():  # warm-up (and compilation)
        run(*batches[name][0])
    n = sum(len(b[0]) for b in next(iter(batches.values())))
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            for b in batches[name]:
                run(*b)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: n / t for name, t in best.items()}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=256, help="utterances (3 s each)")
    p.add_argument("--batch", type=int, default=32, help="utterances per front-end call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--config", default=None, help="config name or .py (default: the paper's)")
    p.add_argument("--config-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-check", action="store_true", help="skip the agreement check")
    return p.parse_args(argv)


def implementations(spec, batches: list) -> tuple[dict, dict, str]:
    """(runs, their inputs, torch's version or why not): jnp (both kinds, arrays on the device
    beforehand, as a data pipeline hands them over), scipy float64 and float32, torch."""
    dev_batches = [(jnp.asarray(w), jnp.asarray(n)) for w, n in batches]
    fn = frontend.make_frontend(spec)
    cmap = frontend.make_frontend(dataclasses.replace(spec, kind="colormap"))
    runs = {"jnp": lambda w, n: fn(w, n).block_until_ready(),
            "jnp_colormap": lambda w, n: cmap(w, n).block_until_ready(),
            # scipy: float64 as written by default (get_window is float64), and all-float32
            "scipy": lambda w, n: scipy_frontend(w, n, spec, np.float64),
            "scipy_f32": lambda w, n: scipy_frontend(w, n, spec, np.float32)}
    inputs = {"jnp": dev_batches, "jnp_colormap": dev_batches, "scipy": batches,
              "scipy_f32": batches}
    try:
        import torch
    except ImportError:
        return runs, inputs, "not importable"
    runs["torch"] = lambda w, n: torch_frontend(torch, w, n, spec)
    inputs["torch"] = [(torch.from_numpy(w), torch.from_numpy(n.astype(np.int64)))
                       for w, n in batches]
    return runs, inputs, f"{torch.__version__} ({torch.get_num_threads()} threads)"


def agreement(spec, batch, torch_batch) -> dict:
    """The largest differences of the jnp front end from scipy's and torch's on one batch."""
    w, n = batch
    ours = np.asarray(frontend.make_frontend(spec)(w, n))
    diff = np.abs(ours - scipy_frontend(w, n, spec))
    # the max sits in bins ~80 dB below their frame, at float32's rounding of the frame
    out = {"max_abs_diff_vs_scipy": float(diff.max()),
           "p99.99_abs_diff_vs_scipy": float(np.quantile(diff, 0.9999))}
    if torch_batch is not None:
        theirs = torch_frontend(sys.modules["torch"], *torch_batch, spec).numpy()
        out["max_abs_diff_vs_torch"] = float(np.abs(ours - theirs).max())
    return out


def main(argv=None):
    args = parse(argv)
    config = load_config(args.config, args.config_overrides)
    config.frontend.kind = "multi_window"
    spec = frontend.FrontendSpec.from_config(config)
    segment = int(round(config.data.segment_s * spec.sample_rate))
    waves, lengths, source = load_utterances(args.n, spec, segment)
    cut = lambda a: [a[i:i + args.batch] for i in range(0, args.n, args.batch)]
    batches = list(zip(cut(waves), cut(lengths)))
    result = dict(n=args.n, batch=args.batch, source=source, shape=list(spec.output_shape),
                  device=f"{jax.default_backend()} ({jax.devices()[0].device_kind})",
                  cpu_count=os.cpu_count(), python=platform.python_version(), jax=jax.__version__)
    runs, inputs, result["torch"] = implementations(spec, batches)
    result["load_avg_before"] = round(os.getloadavg()[0], 2)
    for name, rate in throughputs(runs, inputs, args.repeats).items():
        result[f"{name}_utt_s"] = rate
    result["load_avg_after"] = round(os.getloadavg()[0], 2)
    for name in ("scipy", "scipy_f32", "torch"):
        if result.get(f"{name}_utt_s"):
            result[f"jnp_over_{name}"] = result["jnp_utt_s"] / result[f"{name}_utt_s"]
    if not args.no_check:  # the three must compute the same thing
        result.update(agreement(spec, batches[0], inputs["torch"][0] if "torch" in inputs else None))
    print(json.dumps({k: float(f"{v:.4g}") if isinstance(v, float) else v
                      for k, v in result.items()}))

if __name__ == "__main__":
    main()
