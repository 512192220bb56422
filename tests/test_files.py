"""files.py: atomic writes leave no temporary file behind and give ordinary permissions."""

import os
import stat

import pytest

from adarl_jax.workdir.files import read_json, write_json_atomic, write_text_atomic


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


def test_processes_writing_the_same_figure_never_collide(tmp_path):
    """Fold jobs sharing a workdir each rewrite its report and figures; with one fixed
    temporary name one job's rename took the other's file (FileNotFoundError)."""
    import multiprocessing

    path = tmp_path / "figures" / "confusion_adarl.png"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        pool.map(_plot_many, [(str(path), 6)] * 3)  # re-raises a worker's exception
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(path.parent) == [path.name], "a temporary file was left behind"


def _plot_many(args):
    from adarl_jax.report.figures import plot_confusion

    path, n = args
    for _ in range(n):
        plot_confusion([[0.5, 0.5], [0.25, 0.75]], ["a", "b"], path)


def test_file_sha256_reads_in_blocks_and_matches_hashlib(tmp_path):
    import hashlib

    from adarl_jax.workdir.files import file_sha256

    data = bytes(range(256)) * 9000  # over two 1 MiB blocks
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1] + b"\x00")
    assert file_sha256(path) != hashlib.sha256(data).hexdigest()
