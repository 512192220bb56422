"""Test set-up: 8 simulated CPU devices (for the sharding tests), a tiny config, helpers."""

import json
import os
import shutil
import subprocess
import sys

# Must happen before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EMODB = REPO.parent / "shared" / "data" / "emodb"


def tiny_config(variant: str = "adarl"):
    """The smoke config (configs/smoke.py: a 20 x 15 input, a small model) as a unit test runs
    it: the given variant, no progress bars, and a test's corpus used whole (smoke keeps 40
    utterances)."""
    from adarl_jax.config import load_config

    c = load_config("smoke")
    c.model.variant = variant
    c.train.progress = False
    c.data.max_utterances = 0
    return c


def distinct_axes_config(variant: str = "adarl"):
    """tiny_config with F_4's height, width and channels, the hidden size, the attention
    bottleneck and the class count all different, so that a swapped axis cannot go unnoticed:
    a 40 x 30 input, so F_4 is 8 x 6 x 12 (tiny_config's 4 rows would equal the 4 classes)."""
    from adarl_jax.config import validate

    c = tiny_config(variant)
    c.frontend.update(hop_s=0.1, n_fft=160, n_bins=40, n_frames=30)
    c.model.block_features = (*c.model.block_features[:-1], (6, 6))
    c.model.hidden = 7
    c.model.attention_hidden = 3
    validate(c)
    return c


def in_float64(state):
    """A TrainState with its weights, batch statistics and optimiser state in float64 (under
    jax.enable_x64), for comparisons in which only a real difference may exceed the tolerance;
    integer leaves (step counts) stay as they are."""
    import jax
    import jax.numpy as jnp

    def cast(tree):
        return jax.tree.map(
            lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)

    return state.replace(params=cast(state.params), batch_stats=cast(state.batch_stats),
                         opt_state=cast(state.opt_state))


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


TINY_OVERRIDES = ["--config.data.max_utterances=0"]  # the smoke config, as tiny_config is


def tiny_input_shape() -> tuple:
    """(freq, time, channels) of tiny_config's (and the CLI tests' smoke) spectrograms."""
    from adarl_jax.config import input_shape

    return tuple(input_shape(tiny_config()))


# --- a trained tiny workdir, shared by the inference tests (predict, export, embeddings)

SR = 16000



def train_workdir(root: Path, folds: str = "0,1", extra=()) -> Path:
    """A tiny trained workdir (1 epoch), through the CLI as a user makes one."""
    manifest = make_corpus(root / "corpus")
    workdir = root / "W"
    env = dict(os.environ, XLA_FLAGS="",
               ADARL_JAX_COMPILATION_CACHE=str(root.parent / "xla-cache"))
    subprocess.run([sys.executable, "-m", "adarl_jax.cli", "train", "--config", "smoke",
                    "--corpus", "csv", "--manifest", str(manifest), "--workdir", str(workdir),
                    "--folds", folds, "--no-progress", *TINY_OVERRIDES,
                    "--config.optim.epochs=1", *extra], check=True, cwd=REPO, env=env,
                   capture_output=True)
    return workdir


def shared_workdir(tmp_path_factory) -> Path:
    """One trained workdir per test session (test_export reuses it); tests only read it."""
    root = tmp_path_factory.getbasetemp() / "trained-tiny"
    if not (root / "W" / "results.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        train_workdir(root)
    return root / "W"


def tone(seconds, freq=300.0, sr=SR, seed=0):
    t = np.arange(int(round(seconds * sr))) / sr
    noise = np.random.default_rng(seed).normal(size=t.shape)
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * noise).astype(np.float32)


def result_of(workdir, fold=0):
    return json.loads(next((workdir / "adarl").glob(f"fold_{fold:02d}_*/result.json")).read_text())



# --- synthetic fold results, shared by the report tests (report, seeds)

CLASSES = ["anger", "happiness", "sadness", "neutral"]
GENDERS = ["F", "M"]  # index 0 = F, 1 = M, as config.data.genders


def utt(emotion, gender, feature, probs=None):
    probs = probs or [float(k == emotion) for k in range(4)]
    return {"utterance": 0, "path": "x.wav", "speaker": "", "emotion": emotion, "gender": gender,
            "segments": 1, "probs": probs, "deep_feature": list(map(float, feature))}


def write_fold(workdir, variant, fold, speaker, utterances, val=None, val_speakers=()):
    d = workdir / variant / f"fold_{fold:02d}_{speaker}"
    d.mkdir(parents=True)
    r = {"variant": variant, "fold": fold, "test_speaker": speaker, "classes": CLASSES,
         "genders": GENDERS, "selected_epoch": 0, "test": {"wa": 0.0, "ua": 0.0, "n": 0},
         "val_speakers": list(val_speakers), "utterances": utterances}
    if val is not None:
        r["val_utterances"] = val
    (d / "result.json").write_text(json.dumps(r))
    return r



# --- the command in a subprocess (fold jobs, workers)

def cli_env(tmp_path, **extra):
    """Environment for running the adarl-jax command in a subprocess: one CPU device, its own
    compilation cache."""
    bindir = Path(sys.executable).parent
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_PLATFORMS": "cpu",
            "ADARL_JAX_COMPILATION_CACHE": str(tmp_path / "xla"), **extra}


def tiny_train_args(manifest):
    """train/reproduce flags for a CSV corpus at the tiny size, one epoch."""
    return ["--corpus", "csv", "--manifest", str(manifest), *TINY_OVERRIDES,
            "--config.optim.epochs=1"]
