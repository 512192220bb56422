"""A damaged checkpoint (truncated, deleted or altered data file) is detected when it is read,
named in one paragraph, and `restore()` falls back to the previous intact epoch."""

import logging
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from adarl_jax.train.checkpoint import CheckpointCorruptError, FoldCheckpointer


def _state(epoch: int):
    return {"w": jnp.arange(4096, dtype=jnp.float32) * (epoch + 1),
            "b": {"c": jnp.full((16, 16), float(epoch))}, "step": jnp.asarray(epoch, jnp.int32)}


def _save(directory: Path, epochs) -> None:
    ck = FoldCheckpointer(directory, keep=3)
    for e in epochs:
        ck.save(e, _state(e), {"epoch": e})
    ck.close()


def _largest_data_file(directory: Path, step: int) -> Path:
    files = [p for p in (directory / str(step)).rglob("*") if p.is_file() and p.parent.name == "d"]
    return max(files, key=lambda p: p.stat().st_size)


def _truncate(p: Path) -> None:
    with open(p, "r+b") as f:
        f.truncate(p.stat().st_size // 2)


def _delete(p: Path) -> None:
    p.unlink()


def _flip8(p: Path) -> None:
    with open(p, "r+b") as f:
        f.seek(p.stat().st_size // 2)
        data = f.read(8)
        f.seek(p.stat().st_size // 2)
        f.write(bytes(b ^ 0xFF for b in data))


DAMAGE = {"truncate": _truncate, "delete": _delete, "flip8": _flip8}


def _assert_equal(a, b):
    for k in ("w", "step"):
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))
    np.testing.assert_array_equal(np.asarray(a["b"]["c"]), np.asarray(b["b"]["c"]))


def test_intact_checkpoint_round_trips_without_the_checksum_in_its_record(tmp_path):
    d = tmp_path / "fold_00_s1" / "checkpoints"
    _save(d, [0, 1])
    state, meta = FoldCheckpointer(d).restore(_state(0))
    _assert_equal(state, _state(1))
    assert meta == {"epoch": 1}
    assert sorted(p.name for p in (d / "integrity").iterdir()) == ["0.json", "1.json"]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damage_is_named_and_restore_falls_back_to_the_previous_epoch(tmp_path, damage, caplog):
    fold = tmp_path / "fold_03_s4"
    d = fold / "checkpoints"
    _save(d, [0, 1, 2])
    bad = _largest_data_file(d, 2)
    DAMAGE[damage](bad)

    with pytest.raises(CheckpointCorruptError) as e:
        FoldCheckpointer(d).restore(_state(0), 2)
    msg = str(e.value)
    assert str(fold) in msg and "epoch 2" in msg and bad.name in msg, msg
    assert "\n" not in msg and "Traceback" not in msg

    with caplog.at_level(logging.WARNING, logger="adarl_jax.train.checkpoint"):
        ck = FoldCheckpointer(d)
        state, meta = ck.restore(_state(0))
    _assert_equal(state, _state(1))
    assert meta["epoch"] == 1
    assert "Falling back to the checkpoint of epoch 1" in caplog.text and bad.name in caplog.text
    # the damaged epoch is out of the way, so that training can write it again
    assert ck.latest_step() == 1
    assert [p.name.split("-")[:2] for p in (fold / "corrupt-checkpoints").iterdir()] == [
        ["checkpoints", "2"]]
    ck.save(2, _state(2), {"epoch": 2})
    ck.close()
    _assert_equal(FoldCheckpointer(d).restore(_state(0))[0], _state(2))


@pytest.mark.parametrize("damage", ["truncate", "delete", "flip8"])
def test_damage_is_found_without_the_file_list_too(tmp_path, damage):
    """A checkpoint saved by an older version (or killed before its file list was written):
    orbax's read errors and the array checksum still catch every case."""
    d = tmp_path / "fold_01_s2" / "checkpoints"
    _save(d, [0])
    (d / "integrity" / "0.json").unlink()
    DAMAGE[damage](_largest_data_file(d, 0))
    with pytest.raises(CheckpointCorruptError) as e:
        FoldCheckpointer(d).restore(_state(0), 0)
    assert "fold_01_s2" in str(e.value) and "epoch 0" in str(e.value)


def test_no_intact_checkpoint_left_is_a_clear_error(tmp_path):
    fold = tmp_path / "fold_00_s1"
    d = fold / "checkpoints"
    _save(d, [0])
    _truncate(_largest_data_file(d, 0))
    with pytest.raises(CheckpointCorruptError, match="no intact checkpoint is left") as e:
        FoldCheckpointer(d).restore(_state(0))
    assert f"Delete {d}" in str(e.value)
    assert os.listdir(fold / "corrupt-checkpoints")


def test_another_model_is_a_value_error_not_damage(tmp_path):
    d = tmp_path / "fold_00_s1" / "checkpoints"
    _save(d, [0])
    other = {**_state(0), "w": jnp.zeros(10, jnp.float32)}
    with pytest.raises(ValueError):
        FoldCheckpointer(d).restore(other, 0)
    assert FoldCheckpointer(d).latest_step() == 0  # nothing moved aside
