"""A wheel of the package carries its configs: built, installed into a fresh virtual environment
and run from a folder outside the checkout, it finds every shipped config and grid by name.

The wheel is built offline from a copy of the sources (setuptools and wheel from the test
extra); the fresh environment borrows this one's site-packages for the dependencies through a
.pth file, so only `adarl_jax` itself comes from the wheel. Each check asserts that the module
imported is the installed one, not the checkout's editable source.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import chex
import numpy as np
import pytest

from adarl_jax.config import load_config, to_json
from adarl_jax.experiments.tune import load_grid

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("adarl_jax", "setup.cfg", "pyproject.toml", "README.md")

# run inside the installed environment: where the package lives and what it loads by name
PROBE = r"""
import json, sys
import adarl_jax
from adarl_jax.config import CONFIG_DIR, load_config, to_json
from adarl_jax.experiments.tune import load_grid
names, custom = json.loads(sys.argv[1])
print(json.dumps({
    "file": adarl_jax.__file__,
    "config_dir": str(CONFIG_DIR),
    "configs": {n: json.loads(to_json(load_config(n))) for n in names},
    "grid_config": load_grid("recipe")["config"],
    "custom_lr": load_config(custom).optim.lr,
}))
"""


def _run(cmd, cwd, env=None):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _clean_env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _build_wheel(root: Path) -> Path:
    """Copies the package's sources to `root/src` (the build writes there) and builds a wheel."""
    src = root / "src"
    src.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=skip)
        else:
            shutil.copy(REPO / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", str(root / "dist"), str(src)], cwd=root, env=_clean_env())
    (wheel,) = (root / "dist").glob("adarl_jax-*.whl")
    return wheel


def _fresh_env(root: Path, wheel: Path) -> Path:
    """A virtual environment with the wheel installed; dependencies seen through a .pth file."""
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root)
    # only plain site folders: the checkout's editable finder lives in a .pth there, and .pth
    # files of a folder added this way are not executed
    deps = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    Path(purelib.strip(), "_outer_site.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
          "-q", str(wheel)], cwd=root, env=_clean_env())
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(root)
    venv = _fresh_env(root, wheel)
    outside = root / "elsewhere"
    outside.mkdir()
    return {"wheel": wheel, "venv": venv, "cwd": outside}


def _shipped_names(wheel: Path, folder: str) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        names = [Path(n) for n in z.namelist()]
    return {n.stem for n in names if n.parent == Path(folder) and n.suffix == ".py" and n.stem != "__init__"}


def test_wheel_ships_every_config_and_grid(installed):
    for folder in ("configs", "configs/grids"):  # the checkout's, through its top-level link
        in_repo = {p.stem for p in (REPO / folder).glob("*.py") if p.stem != "__init__"}
        assert in_repo and _shipped_names(installed["wheel"], f"adarl_jax/{folder}") == in_repo


def test_installed_wheel_loads_configs_by_name_outside_the_checkout(installed):
    venv, cwd = installed["venv"], installed["cwd"]
    names = sorted(_shipped_names(installed["wheel"], "adarl_jax/configs"))
    custom = cwd / "my_config.py"  # a path still works, and may build on a shipped config by name
    custom.write_text("from adarl_jax.config import load_config\n\n\ndef get_config():\n"
                      "    c = load_config('smoke')\n    c.optim.lr = 0.125\n    return c\n")
    out = _run([venv / "bin" / "python", "-c", PROBE, json.dumps([names, str(custom)])], cwd=cwd,
               env=_clean_env())
    got = json.loads(out)
    site = Path(venv).resolve()
    assert Path(got["file"]).resolve().is_relative_to(site), f"imported {got['file']}, not the wheel's"
    assert Path(got["config_dir"]).resolve().is_relative_to(site)
    assert not Path(got["config_dir"]).resolve().is_relative_to(REPO)
    want = {n: json.loads(to_json(load_config(n))) for n in names}  # the checkout's, for reference
    chex.assert_trees_all_equal(got["configs"], want)
    assert got["grid_config"] == load_grid("recipe")["config"]
    assert got["custom_lr"] == 0.125


def test_installed_console_script_runs_outside_the_checkout(installed):
    venv, cwd = installed["venv"], installed["cwd"]
    script = venv / "bin" / "adarl-jax"
    assert script.exists(), "the wheel installed no adarl-jax command"
    assert Path(script.read_text().splitlines()[0].removeprefix("#!")).parent == venv / "bin"
    out = _run([script, "--help"], cwd=cwd, env=_clean_env())
    assert "reproduce" in out and "train" in out


def _requirements(wheel: Path) -> dict[str | None, set[str]]:
    """{extra or None (what `pip install .` pulls): {distribution names}} from the wheel's
    METADATA Requires-Dist lines."""
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        lines = z.read(name).decode().splitlines()
    out: dict[str | None, set[str]] = {}
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        spec, _, marker = line.removeprefix("Requires-Dist:").partition(";")
        dist = spec.strip().split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        extra = marker.split("extra ==")[1].strip().strip("'\"") if "extra ==" in marker else None
        out.setdefault(extra, set()).add(dist)
    return out


def test_a_plain_install_pulls_neither_scikit_learn_nor_matplotlib(installed):
    reqs = _requirements(installed["wheel"])
    assert {"jax", "flax", "optax", "numpy", "soundfile"} <= reqs[None]
    assert not reqs[None] & {"scikit-learn", "matplotlib", "opensmile"}
    assert {"matplotlib", "scikit-learn"} <= reqs["report"]
    assert {"opensmile", "scikit-learn"} <= reqs["baselines"]
    assert reqs["report"] | reqs["baselines"] <= reqs["all"]
    assert {"matplotlib", "scikit-learn", "pytest"} <= reqs["test"]  # what the suite imports


def test_the_installed_wheel_predicts_with_its_shipped_model_outside_the_checkout(installed):
    with zipfile.ZipFile(installed["wheel"]) as z:
        names = set(z.namelist())
    for name in ("params.npz", "config.json", "model.json", "MODEL.md"):
        assert f"adarl_jax/pretrained/emodb/{name}" in names
    venv, cwd = installed["venv"], installed["cwd"]
    import soundfile as sf

    t = np.arange(40000) / 16000
    sf.write(cwd / "clip.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    out = _run([venv / "bin" / "adarl-jax", "predict", "clip.wav", "--no-progress"], cwd=cwd,
               env=_clean_env())
    header, row = out.strip().splitlines()
    assert header.startswith("path,emotion,") and row.split(",")[1] in (
        "anger", "happiness", "sadness", "neutral")
