"""How a failed command reports itself: a short message and an exit code, no traceback.

Exit codes of `adarl-jax`:
  0  done
  1  an unexpected error (a bug, or a library failing): its first line; `--debug` shows all
  2  bad input: arguments, config, corpus, manifest, audio, a checkpoint that does not fit its
     config, a workdir whose config differs from the run's (`ConfigMismatchError`); also
     `predict` when every input failed; a missing optional extra (`MissingExtraError`:
     the message says which to pip install)
  3  training diverged (a non-finite loss or parameter); finished folds are kept
  4  a file or folder cannot be written or read: permission denied, read-only file system,
     disk full (the message names the path)
  5  another live run holds the workdir's fold (`WorkdirLockedError`)
  6  a checkpoint is corrupt (`CheckpointCorruptError`)
  143  stopped by SIGTERM (128 + 15, what a shell reports for a process the signal killed):
     one line says so; the run's locks are released, finished folds kept, and a rerun resumes
     from the last checkpoint (adarl_jax.termination turns the signal into `Terminated`)

`describe(exc)` maps an exception to (code, message) with the table below. Classes that live
in modules of this package are looked up by name in the modules already imported, so a class
that does not exist (yet) costs nothing and an exception of it cannot have been raised anyway.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import sys

from adarl_jax.termination import Terminated, on_sigterm  # exit 143's cause

__all__ = ["EXIT_ERROR", "EXIT_USAGE", "EXIT_DIVERGED", "EXIT_IO", "EXIT_LOCKED",
           "EXIT_CHECKPOINT", "EXIT_TERMINATED", "Terminated", "on_sigterm", "describe"]

EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED, EXIT_IO, EXIT_LOCKED, EXIT_CHECKPOINT = 1, 2, 3, 4, 5, 6
EXIT_TERMINATED = 128 + signal.SIGTERM

# (module, class name, exit code), first match wins: put subclasses before their bases.
NAMED_ERRORS = (
    ("adarl_jax.experiments.loso", "ConfigMismatchError", EXIT_USAGE),
    ("adarl_jax.workdir.locks", "WorkdirLockedError", EXIT_LOCKED),
    ("adarl_jax.train.checkpoint", "CheckpointCorruptError", EXIT_CHECKPOINT),
    ("adarl_jax.extras", "MissingExtraError", EXIT_USAGE),
)
BUILTIN_ERRORS = (
    (FloatingPointError, EXIT_DIVERGED),
    # OSError subclasses that are no disk problem: a missing input, an output that would
    # replace finished work, an unreachable coordinator
    ((FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, TimeoutError,
      ConnectionError), EXIT_USAGE),
    (OSError, EXIT_IO),
    ((ValueError, KeyError, TypeError), EXIT_USAGE),
)

_IO_HINTS = {
    errno.EACCES: "permission denied: make it writable (or readable), or choose another folder",
    errno.EPERM: "operation not permitted: check the owner and permissions, or choose another folder",
    errno.EROFS: "read-only file system: choose a folder on a writable disk",
    errno.ENOSPC: "no space left on the device: free some space or choose a folder on another disk",
    errno.EDQUOT: "disk quota exceeded: free some space or choose a folder on another disk",
}
# a temporary file of files.write_atomic (".<name>.<random>.tmp") or of the dataset cache
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$|^\.tmp-")


def _exit_code(exc: BaseException) -> int | None:
    for module, name, code in NAMED_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return code
    for classes, code in BUILTIN_ERRORS:
        if isinstance(exc, classes):
            return code
    return None


def _io_path(exc: OSError, fallback: str | None) -> str | None:
    """The path the user knows: a temporary file's final name, or its folder."""
    path = exc.filename if exc.filename is not None else fallback
    if path is None:
        return None
    path = os.fspath(path)
    m = _TEMP_NAME.match(os.path.basename(path))
    if m:
        folder = os.path.dirname(path)
        return os.path.join(folder, m.group("name")) if m.group("name") else folder
    return path


def _free_space(path: str | None) -> str:
    """' (N MB free on its disk)' for `path`'s folder (itself when a folder), or '' when
    there is no such folder."""
    if not path:
        return ""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    return "" if free is None else f" ({free / 2**20:,.1f} MB free on its disk)"


def _io_message(exc: OSError, path_hint: str | None) -> str:
    path = _io_path(exc, path_hint)
    reason = _IO_HINTS.get(exc.errno) or (exc.strerror or str(exc)).lower()
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = reason.replace(": ", f"{_free_space(path)}: ", 1)
    return f"{path}: {reason}" if path else reason


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0].strip() if lines else ''}".rstrip(": ")
    return text + (f" [{len(lines) - 1} more line(s)]" if len(lines) > 1 else "")


def describe(exc: BaseException, path_hint: str | None = None) -> tuple[int, str]:
    """(exit code, message) for a command's failure. `path_hint` (e.g. the workdir) names
    the place when a disk error carries no file name."""
    code = _exit_code(exc)
    if code is None:
        return EXIT_ERROR, f"{_first_line(exc)} (rerun with --debug for the traceback)"
    if isinstance(exc, OSError) and exc.errno is not None:  # raised by the system
        return code, _io_message(exc, path_hint)
    if isinstance(exc, KeyError) and exc.args:
        return code, str(exc.args[0])
    return code, str(exc) or type(exc).__name__
