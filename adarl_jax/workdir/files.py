"""Atomic writes: results appear whole or not at all (write a temporary name, then rename).

Every temporary name is unique (mkstemp), so several processes writing the same file (fold
jobs of one workdir each rewriting its report) never take each other's temporary file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path, mode: str, write) -> None:
    """Calls write(f) on a temporary file beside `path` (mode 'w' or 'wb'), then renames it.
    mkstemp creates the file 0600; the result gets the permissions a plain open() would
    give (0666 less the umask), so results written here are readable like any other file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and (e.filename is None or e.errno is None):
            raise _naming(e, path) from e
        raise


def _naming(e: OSError, path: Path) -> OSError:
    """The error of a write that carries no file name (a file object's write or flush) or no
    errno (numpy's short write "8000 requested and 992 written": the disk filled), with both:
    cli_errors then names the file and the free space."""
    code = e.errno if e.errno is not None else errno.ENOSPC
    return OSError(code, f"{os.strerror(code)} ({e})", os.fspath(path))


def write_text_atomic(path, text: str) -> None:
    write_atomic(path, "w", lambda f: f.write(text))


def write_bytes_atomic(path, data: bytes) -> None:
    write_atomic(path, "wb", lambda f: f.write(data))


def save_npy_atomic(path, array) -> None:
    import numpy as np

    write_atomic(path, "wb", lambda f: np.save(f, array, allow_pickle=False))


def file_sha256(path) -> str:
    """The SHA-256 hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def digest(data: bytes) -> dict:
    """{'bytes', 'sha256'} of a blob, as model folders and export records list their files."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)
