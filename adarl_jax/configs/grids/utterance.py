"""How much of each utterance the model sees, for `adarl-jax tune`: the `quick` recipe's adarl
as it was before the silence trim joined it (`adarl`, trim_db 0) against overlapping segments
and against the trim (which won this screen and its confirmation seeds, RESULTS.md, and is now
part of `quick.py`).

  adarl-jax tune --grid utterance --data ../shared/data/emodb --workdir runs/tune-utterance-emodb

- overlap: a 3 s segment every 1 s (`data.segment_hop_s=1.0`): up to three times the training
  segments of a long utterance, and three views of it to average at test time;
- overlap_half: a segment every 0.5 s;
- trim: the leading and trailing silence cut first (`data.trim_db=40`: from the first to the
  last 25 ms frame within 40 dB of the loudest), so that a segment holds speech;
- overlap_trim: both, the trim then a segment every 1 s (run after the trim joined `quick.py`,
  against `trim`: `--candidates trim,overlap_trim`).

The plain cut keeps one 3 s segment of a 3.1-4.6 s RAVDESS utterance, starting with its ~0.5-1 s
of leading silence, and drops the rest when it is under `data.min_tail_s` (1 s); an overlapping
cut keeps every part of it. Everything else is `configs/quick.py` as it stands (600 training
steps now; the screen in RESULTS.md ran at 300); every candidate names its trim, so the trim
joining `quick.py` changed none of them.
"""


def get_grid():
    return {
        "config": "quick",
        "candidates": {
            "adarl": ["data.trim_db=0.0"],
            "overlap": ["data.trim_db=0.0", "data.segment_hop_s=1.0"],
            "overlap_half": ["data.trim_db=0.0", "data.segment_hop_s=0.5"],
            "trim": ["data.trim_db=40.0"],
            "overlap_trim": ["data.trim_db=40.0", "data.segment_hop_s=1.0"],
        },
    }
