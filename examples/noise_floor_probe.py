"""How a trained model's labels move when its recordings get a noise floor: every recording of
a manifest as it is, then with white noise LEVEL dB below its loudest 25 ms frame, labelled by
the model with each speaker's statistics from the audio given; prints the row-normalised
confusion of both. A sensitivity probe (RESULTS.md, "Perturbing the voice in training"), not an
accuracy figure.

  python examples/noise_floor_probe.py --checkpoint runs/cross-cut/trim-ravdess-emodb \
      --manifest ../shared/data/ravdess-dev/manifest.csv --speakers Actor_01,...,Actor_06 --level 39
"""

import argparse
import csv
import os

import numpy as np

from adarl_jax import Predictor
from adarl_jax.data.audio import load_audio


def with_noise_floor(wave: np.ndarray, level_db: float, rng, frame: int = 400) -> np.ndarray:
    """`wave` plus white noise `level_db` below the mean power of its loudest `frame`-sample frame."""
    frames = wave[:len(wave) // frame * frame].reshape(-1, frame)
    top = float(np.max((frames ** 2).mean(1)))
    return wave + rng.standard_normal(len(wave)).astype(np.float32) * np.sqrt(top * 10 ** (-level_db / 10))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="a LOSO workdir or fold folder")
    ap.add_argument("--manifest", required=True, help="CSV path,speaker,gender,emotion")
    ap.add_argument("--speakers", default="", help="comma list (default: all)")
    ap.add_argument("--level", type=float, default=39.0, help="dB below the loudest frame")
    args = ap.parse_args()
    model = Predictor.from_checkpoint(args.checkpoint)
    root = os.path.dirname(os.path.abspath(args.manifest))
    wanted = set(filter(None, args.speakers.split(",")))
    rows = [r for r in csv.DictReader(open(args.manifest))
            if (not wanted or r["speaker"] in wanted) and r["emotion"] in model.classes]
    rng = np.random.default_rng(0)
    clean = [load_audio(os.path.join(root, r["path"]), model.sample_rate) for r in rows]
    noisy = [with_noise_floor(w, args.level, rng) for w in clean]
    truth = np.array([r["emotion"] for r in rows])
    for name, waves in (("as recorded", clean), (f"noise floor -{args.level:g} dB", noisy)):
        recs = model.predict_batch(waves, model.sample_rate, speakers=[r["speaker"] for r in rows])
        pred = np.array([r["emotion"] for r in recs])
        print(name)
        for c in model.classes:
            m = truth == c
            print(f"  {c:>10s} (n={m.sum()}): " + " / ".join(f"{(pred[m] == k).mean():.2f}" for k in model.classes))


if __name__ == "__main__":
    main()
