"""Each shipped config is the base plus its own overrides, in one file, and resolves to exactly
what it resolved to when the configs chained through one another (tests/data/configs/*.json,
written by the code before the configs were flattened)."""

import ast
import json
from pathlib import Path

import pytest

from adarl_jax.config import CONFIG_DIR, load_config, to_json

RESOLVED = Path(__file__).parent / "data" / "configs"
SHIPPED = sorted(p.stem for p in CONFIG_DIR.glob("*.py") if p.stem not in ("__init__", "base"))


def test_every_shipped_config_has_its_recorded_resolution():
    assert SHIPPED == sorted(p.stem for p in RESOLVED.glob("*.json"))


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_config_resolves_as_before_field_by_field(name):
    before = json.loads((RESOLVED / f"{name}.json").read_text())
    now = json.loads(to_json(load_config(name)))
    assert sorted(now) == sorted(before)
    for section, fields in before.items():
        assert sorted(now[section]) == sorted(fields), section
        for field, value in fields.items():
            assert now[section][field] == value, f"{name}: {section}.{field}"


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_config_reads_alone_from_the_base(name):
    """It imports the base config and nothing else of the package, and calls no loader."""
    tree = ast.parse((CONFIG_DIR / f"{name}.py").read_text())
    imported = [(node.module, [a.name for a in node.names]) for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom)]
    assert imported == [("adarl_jax.configs", ["base"])]
    calls = {node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
             for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert "load_config" not in calls and "apply_override" not in calls
