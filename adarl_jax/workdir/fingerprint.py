"""A workdir's data fingerprint: the recordings it was trained on, so that other recordings
laid out like the same corpus (`--data` pointed elsewhere) are refused, not mistaken for it.

`W/data.json` is written by the first run into W: every utterance's path relative to the
corpus folder with its size in bytes, and the SHA-256 of the first 64 KiB of a sample of
`SAMPLE` files spread over the list. Modification times are left out: a corpus copied or
moved keeps its paths, sizes and contents but not its times (data.dir is not pinned for the
same reason). A later run that reads other files, other sizes or other contents raises
`DataMismatchError` naming what differs, unless forced (--force-new-config), which writes the
new fingerprint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from adarl_jax.workdir.files import read_json, write_json_atomic
from adarl_jax.workdir.pinning import ConfigMismatchError

__all__ = ["DATA_FILE", "DataMismatchError", "fingerprint", "differences", "check_fingerprint"]

DATA_FILE = "data.json"
SAMPLE = 8
HEAD_BYTES = 64 * 1024


class DataMismatchError(ConfigMismatchError):
    """The workdir was trained on other recordings than this run reads."""


def _head_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()


def fingerprint(utterances) -> dict:
    """{'root', 'files': {relative path: bytes}, 'sample': {relative path: sha256 of its head}}."""
    paths = sorted({u.path for u in utterances})
    root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    files = {os.path.relpath(p, root): os.path.getsize(p) for p in paths}
    step = max(1, len(paths) // SAMPLE)
    sample = {os.path.relpath(p, root): _head_sha256(p) for p in paths[::step][:SAMPLE]}
    return {"root": root, "files": files, "sample": sample}


def _some(names, limit: int = 3) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def differences(old: dict, new: dict) -> str | None:
    """What differs between two fingerprints, in words; None when they agree."""
    a, b = old.get("files", {}), new.get("files", {})
    parts = []
    if set(a) - set(b):
        parts.append(f"{len(set(a) - set(b))} file(s) trained on are not read now "
                     f"({_some(set(a) - set(b))})")
    if set(b) - set(a):
        parts.append(f"{len(set(b) - set(a))} file(s) read now were not trained on "
                     f"({_some(set(b) - set(a))})")
    resized = [k for k in set(a) & set(b) if a[k] != b[k]]
    if resized:
        k = sorted(resized)[0]
        parts.append(f"{len(resized)} file(s) differ in size (e.g. {k}: {a[k]} -> {b[k]} bytes)")
    sa, sb = old.get("sample", {}), new.get("sample", {})
    changed = [k for k in set(sa) & set(sb) if sa[k] != sb[k] and k not in resized]
    if changed:
        parts.append(f"{len(changed)} of {len(sa)} sampled file(s) of the same size have other "
                     f"contents ({_some(changed)})")
    return "; ".join(parts) or None


def check_fingerprint(workdir, utterances, force: bool = False, write: bool = True) -> str | None:
    """Compares the data a run reads with `W/data.json` (writing it when there is none, if
    `write`). Raises DataMismatchError when they differ, unless `force`: then the new
    fingerprint replaces the old one and the differences are returned (else None)."""
    path = Path(workdir) / DATA_FILE
    new = fingerprint(utterances)
    old = read_json(path) if path.is_file() else None
    diff = differences(old, new) if old is not None else None
    if diff and not force:
        raise DataMismatchError(
            f"{path}: the recordings read now (in {new['root']}) are not the ones this workdir "
            f"was trained on (in {old.get('root')}): {diff}. Its finished folds would be kept as "
            "this run's. Use a new --workdir, or pass --force-new-config to move what the old "
            "data trained aside and start afresh")
    if write and (old is None or diff):
        Path(workdir).mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, new)
    return diff
