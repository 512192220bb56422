"""The package's front door: `import adarl_jax` is cheap and names what a user needs; an
optional dependency that is missing names the extra that brings it."""

import subprocess
import sys

import pytest

import adarl_jax
from adarl_jax.extras import MissingExtraError, require
from conftest import REPO


def test_import_is_cheap_and_the_names_resolve_lazily():
    probe = ("import sys, adarl_jax; heavy = [m for m in ('jax', 'numpy', 'flax') if m in "
             "sys.modules]; print(heavy); from adarl_jax import Predictor; "
             "print(Predictor.__module__, 'jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "adarl_jax.inference.predict True"
    from adarl_jax.inference.predict import Predictor

    assert adarl_jax.Predictor is Predictor and "Predictor" in dir(adarl_jax)
    assert set(adarl_jax.__all__) >= {"Predictor", "load_config", "__version__"}
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        adarl_jax.Nope


def test_a_missing_extra_is_named(monkeypatch, tmp_path):
    with pytest.raises(MissingExtraError, match=r"figures needs the `no_such_pkg` package: "
                       r"pip install 'adarl-jax\[report\]'"):
        require("no_such_pkg.sub", "report", "figures")
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were not installed
    monkeypatch.setitem(sys.modules, "sklearn.svm", None)
    with pytest.raises(MissingExtraError, match=r"`scikit-learn` package: pip install "
                       r"'adarl-jax\[baselines\]'"):
        require("sklearn.svm", "baselines", "the SVM baselines")
    from adarl_jax.baselines import opensmile as baselines
    from adarl_jax.report import figures
    from adarl_jax.cli.errors import describe

    assert not baselines.opensmile_available()
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingExtraError, match=r"adarl-jax\[report\]") as e:
        figures.plot_confusion([[1, 0], [0, 1]], ["a", "b"], tmp_path / "c.png")
    assert describe(e.value)[0] == 2
