"""files.py: atomic writes leave no temporary file behind and give ordinary permissions."""

import os
import stat

import pytest

from adarl_jax.files import read_json, write_json_atomic, write_text_atomic


def test_atomic_file_has_the_permissions_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_json_atomic(tmp_path / "r.json", {"a": 1})
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "r.json") == mode(plain)
    assert read_json(tmp_path / "r.json") == {"a": 1}


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "report.md"
    write_text_atomic(path, "finished work")

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        write_text_atomic(path, Boom())
    assert path.read_text() == "finished work"
    assert os.listdir(tmp_path) == ["report.md"]
