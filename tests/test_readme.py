"""The README's shell blocks for predicting and for training on one's own corpus run as
written (the manual cannot rot): each line runs, with the smoke config, one epoch and a tiny
generated corpus where the README names a user's corpus, and must exit 0."""

import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, make_corpus

SECTIONS = ("## Predict your own file", "## Train on your own corpus")
CONFIGURED = {"reproduce", "train", "tune"}  # commands that read a config


def readme_lines(section: str) -> list[str]:
    """The command lines of the ```bash blocks of a README section (comments dropped)."""
    text = (REPO / "README.md").read_text()
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", body, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line:
                lines.append(line)
    return lines


def test_the_sections_have_commands():
    for section in SECTIONS:
        assert readme_lines(section), section


@pytest.mark.integration
def test_readme_commands_run(tmp_path):
    import soundfile as sf

    manifest = make_corpus(tmp_path / "corpus")
    clips = tmp_path / "clips"
    clips.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.wav", "b.wav"):
        sf.write(clips / name, (0.1 * rng.normal(size=32000)).astype(np.float32), 16000)
    names = {"my_corpus.csv": str(manifest), "clips/": f"{clips}/", "clip.wav": str(clips / "a.wav"),
             "runs/": f"{tmp_path}/runs/"}
    env = dict(os.environ, XLA_FLAGS="", ADARL_JAX_COMPILATION_CACHE=str(tmp_path / "xla"))
    for section in SECTIONS:
        for line in readme_lines(section):
            words = shlex.split(line)
            assert words[0] == "adarl-jax", line
            words = [next((w.replace(k, v) for k, v in names.items() if k in w), w) for w in words]
            if words[1] in CONFIGURED:
                words += ["--config", "smoke", "--config.optim.epochs=1", "--no-progress",
                          "--config.data.max_utterances=0"]
            done = subprocess.run([sys.executable, "-m", "adarl_jax.cli", *words[1:]], cwd=tmp_path,
                                  env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
