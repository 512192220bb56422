"""The recipe levers of the generalisation work, as candidates for `adarl-jax tune`.

  adarl-jax tune --grid recipe --data ../shared/data/emodb --workdir runs/tune-emodb

Each candidate adds one lever to the one before, from the earlier recipe (`configs/quick_sgd.py`):
- recipe: 15 epochs of SGD lr 0.05 (135 steps on EmoDB), per-segment z-scored 0-4 kHz bins;
- fit: AdamW (lr 1e-3, decoupled weight decay 1e-2), cosine decay over 300 steps, whatever
  the corpus size (optim.train_steps), so the training speakers are fitted;
- fit_spk: + per-speaker standardisation of the log spectrogram instead of per segment
  (transductive: the test speaker's unlabelled audio gives its statistics), which keeps each
  utterance's loudness and spectral tilt relative to its speaker;
- fit_mel_spk: + 80 HTK-mel bands over 0-8 kHz instead of 80 linear bins over 0-4 kHz;
- fit_mel_spk_dom: + utterances of the other emotions as domain-only samples for the gender
  pathway (a no-op on a corpus with only the four classes).
"""

FIT = ["optim.optimizer=adamw", "optim.schedule=cosine", "optim.lr=0.001",
       "optim.weight_decay=0.01", "optim.train_steps=300"]
SPK = ["frontend.normalize=speaker"]
MEL = ["frontend.scale=mel", "frontend.n_fft=640", "frontend.fmax_hz=8000.0"]


def get_grid():
    return {
        "config": "quick_sgd",
        "candidates": {
            "recipe": [],
            "fit": FIT,
            "fit_spk": FIT + SPK,
            "fit_mel_spk": FIT + SPK + MEL,
            "fit_mel_spk_dom": FIT + SPK + MEL + ["data.other_emotions=domain_only"],
        },
    }
