"""Models shipped inside the package, one model folder each (adarl_jax.inference.model_folder:
params.npz, config.json, model.json with the files' hashes, MODEL.md, the model card).

  emodb   the default recipe (configs/quick.py, variant adarl) trained on all of EmoDB's
          4-class part (10 speakers, 339 utterances; CC0), its epochs from a LOSO run

`adarl-jax predict clip.wav` with neither --model nor --checkpoint uses DEFAULT, and so does
`Predictor.from_pretrained()`. A folder is rebuilt by one command (docs/INFERENCE.md):

  launch/pretrained_emodb.sh ../shared/data/emodb
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT", "PRETRAINED", "pretrained_dir"]

PRETRAINED = ("emodb",)
DEFAULT = "emodb"
HERE = Path(__file__).resolve().parent


def pretrained_dir(name: str = DEFAULT) -> Path:
    """The folder of a shipped model. Raises ValueError for an unknown name and
    FileNotFoundError when this installation lacks the folder (a checkout where it was not
    built: launch/pretrained_emodb.sh builds it)."""
    if name not in PRETRAINED:
        raise ValueError(f"no pretrained model {name!r}: the package ships {', '.join(PRETRAINED)}")
    folder = HERE / name
    if not (folder / "model.json").is_file():
        raise FileNotFoundError(f"{folder}: the pretrained model {name!r} is not in this "
                                f"installation (build it: launch/pretrained_{name}.sh DATA_DIR)")
    return folder
