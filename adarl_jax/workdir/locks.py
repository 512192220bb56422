"""One writer per fold of a workdir: lock files with their owner's pid and host.

`W/.locks/fold_<kk>.lock` is created atomically (O_CREAT | O_EXCL) by the run that trains fold
k (every variant of it, and its baselines) and removed when that run ends. A second run whose
folds overlap is refused, naming the owner; runs on disjoint folds (`--folds` jobs of a job
array) share the workdir freely.

- Worker processes started by `adarl_jax.experiments.workers` find their parent's lock (the parent names
  itself in ADARL_JAX_LOCK_PARENT) and inherit it; each adds its own pid to the file, so the
  lock stays live for as long as any of them runs.
- A lock is stale when, on this host, none of its processes is alive (a pid reused by another
  program is told apart by its start time); on another host, when its owner has not refreshed
  it for `stale_after_s` (a live owner touches it every minute). A stale lock is taken over,
  with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_DIR = ".locks"
PARENT_ENV = "ADARL_JAX_LOCK_PARENT"
STALE_AFTER_S = 600.0
HEARTBEAT_S = 60.0


class WorkdirLockedError(RuntimeError):
    """Another live run holds a lock this run needs."""


def lock_path(workdir, fold: int) -> Path:
    return Path(workdir) / LOCK_DIR / f"fold_{int(fold):02d}.lock"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    now = _start_time(pid)
    return started is None or now is None or now == started


def me() -> dict:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": _start_time(pid)}


def _processes(owner: dict) -> list[dict]:
    return [{"pid": owner["pid"], "started": owner.get("started")}, *owner.get("workers", [])]


def is_stale(owner: dict, mtime: float, stale_after_s: float = STALE_AFTER_S) -> bool:
    if owner.get("host") == socket.gethostname():
        return not any(_alive(int(p["pid"]), p.get("started")) for p in _processes(owner))
    return time.time() - mtime > stale_after_s


def describe(owner: dict) -> str:
    if "pid" not in owner:
        return "a run whose lock file is unreadable (perhaps still being written)"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("since", 0)))
    return (f"pid {owner.get('pid')} on host {owner.get('host')} since {since} "
            f"(`{owner.get('command', '?')}`)")


def read_owner(path: Path) -> dict | None:
    """The lock's owner record; {} when it cannot be parsed (a writer died mid-write, or a
    file of another program); None when there is no lock."""
    try:
        return json.loads(path.read_text()) or {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def create_exclusive(path: Path, record: dict) -> bool:
    """Creates the file `path` with the JSON `record` atomically; False when it exists already."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(record))
    return True


def _rewrite(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def _take_over(path: Path, seen: dict) -> bool:
    """Removes a stale lock if it is still the one we judged stale (not one a racing run has
    just taken over): renamed away first, checked, and put back if it has changed."""
    aside = path.with_name(f".{path.name}.stale.{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True
    if read_owner(aside) != seen:
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


class FoldLocks:
    """The locks of some folds of one workdir, taken all or none. A context manager; `release()`
    removes the files this object created (never another run's)."""

    def __init__(self, workdir, folds, command: str | None = None,
                 stale_after_s: float = STALE_AFTER_S, heartbeat_s: float = HEARTBEAT_S):
        self.workdir = Path(workdir)
        self.folds = sorted({int(f) for f in folds})
        self.command = command or " ".join(["adarl-jax", *sys.argv[1:]])
        self.stale_after_s, self.heartbeat_s = float(stale_after_s), float(heartbeat_s)
        self.taken: list[Path] = []
        self._stop = threading.Event()

    def _path(self, fold: int) -> Path:
        return lock_path(self.workdir, fold)

    def acquire(self) -> "FoldLocks":
        record = {**me(), "since": time.time(), "command": self.command}
        busy: dict[str, tuple[dict, list[int]]] = {}
        try:
            for fold in self.folds:
                self._path(fold).parent.mkdir(parents=True, exist_ok=True)
                owner = self._acquire_one(self._path(fold), record)
                if owner is not None:
                    busy.setdefault(describe(owner), (owner, []))[1].append(fold)
        except BaseException:
            self.release()
            raise
        if busy:
            self.release()
            raise WorkdirLockedError(self._busy_message(busy))
        if self.taken:
            threading.Thread(target=self._heartbeat, daemon=True).start()
        return self

    def _busy_message(self, busy) -> str:
        parts = [f"fold(s) {', '.join(map(str, folds))} by {who}" for who, (_, folds) in busy.items()]
        paths = [str(self._path(f)) for _, folds in busy.values() for f in folds]
        return (f"workdir {self.workdir} is in use: {'; '.join(parts)}. Wait for that run to end, "
                f"or train other folds with --folds; if it is gone (e.g. killed on another host, "
                f"whose locks turn stale {self.stale_after_s:.0f} s after their last refresh), "
                f"delete {' '.join(paths)}")

    def _acquire_one(self, path: Path, record: dict) -> dict | None:
        """None when the lock is ours now (created, already ours, or our parent's); else the
        live owner that holds it."""
        owner = None
        for _ in range(20):
            if create_exclusive(path, record):
                self.taken.append(path)
                return None
            owner = read_owner(path)
            if owner is None:
                continue  # released meanwhile
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue
            if _same_process(owner, record):
                return None
            if is_stale(owner, mtime, self.stale_after_s):
                log.warning("%s: taking over the stale lock of %s, which is no longer running",
                            path, describe(owner))
                _take_over(path, owner)
                continue
            if _is_parent(owner):
                workers = owner.get("workers", [])
                if any(w.get("pid") == record["pid"] for w in workers):
                    return None
                # listed, then read back: a worker of the same parent rewriting the file at the
                # same moment can drop this one, which then adds itself again
                _rewrite(path, {**owner, "workers": [
                    *workers, {"pid": record["pid"], "started": record["started"]}]})
                continue
            return owner
        return owner or {}

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            for path in list(self.taken):
                try:
                    os.utime(path)
                except OSError:
                    pass

    def release(self) -> None:
        self._stop.set()
        mine = me()
        for path in self.taken:
            owner = read_owner(path)
            if owner is not None and _same_process(owner, mine):
                path.unlink(missing_ok=True)
        self.taken = []

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


class FolderLock(FoldLocks):
    """The lock of one output folder (a model folder that `train --final` writes): the file
    `<parent>/.<name>.lock` beside it, with FoldLocks' owner record, staleness and heartbeat."""

    def __init__(self, folder, command: str | None = None, **kw):
        self.folder = Path(folder)
        super().__init__(self.folder.parent, [0], command, **kw)

    def _path(self, fold: int) -> Path:
        return self.folder.with_name(f".{self.folder.name}.lock")

    def _busy_message(self, busy) -> str:
        (who, _), = busy.items()
        return (f"{self.folder} is being written by {who}. Wait for that run to end, or choose "
                f"another folder; if it is gone (e.g. killed on another host, whose locks turn "
                f"stale {self.stale_after_s:.0f} s after their last refresh), delete "
                f"{self._path(0)}")


def _same_process(owner: dict, other: dict) -> bool:
    return owner.get("host") == other["host"] and owner.get("pid") == other["pid"]


def _is_parent(owner: dict) -> bool:
    """The lock belongs to the process that started this one as a worker."""
    return os.environ.get(PARENT_ENV) == f"{owner.get('host')}:{owner.get('pid')}"


def parent_marker() -> str:
    """The value of ADARL_JAX_LOCK_PARENT for the workers this process starts."""
    return f"{socket.gethostname()}:{os.getpid()}"


def live_foreign_locks(workdir) -> dict[int, dict]:
    """{fold: owner} of the live locks in `workdir` that neither this process nor its parent
    holds."""
    out = {}
    for path in sorted((Path(workdir) / LOCK_DIR).glob("fold_*.lock")):
        owner = read_owner(path)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue
        if owner is None or _same_process(owner, me()) or _is_parent(owner):
            continue
        if not is_stale(owner, mtime):
            out[int(path.stem.split("_")[1])] = owner
    return out
