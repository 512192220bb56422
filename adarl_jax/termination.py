"""SIGTERM as an exception: a run stops where it is, its `finally` clauses (locks, checkpoint
managers) run on the way out, and the command line reports it in one line (exit 143, see
adarl_jax.cli.errors).

Within `on_sigterm()`, SIGTERM raises `Terminated` in the main thread, except inside
`uninterrupted()` sections (a checkpoint being written or sealed): there it is held and raised
when the section ends, so that no save is cut in half. A signal that lands in a garbage-
collection callback or a __del__ (where Python ignores what is raised) is sent again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

__all__ = ["Terminated", "on_sigterm", "uninterrupted"]


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, as KeyboardInterrupt is: no `except Exception` on the
    way out swallows it."""


class _State:  # the signal is the process's, so is this
    depth = 0  # nested uninterrupted() sections running
    pending: int | None = None  # a signal held until they end


def _terminated(signum: int) -> Terminated:
    return Terminated(f"stopped by {signal.Signals(signum).name}")


@contextlib.contextmanager
def uninterrupted():
    """Holds SIGTERM (under on_sigterm) until the block ends; then raises it."""
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
    if _State.depth == 0 and _State.pending is not None:
        signum, _State.pending = _State.pending, None
        raise _terminated(signum)


@contextlib.contextmanager
def on_sigterm():
    """Within: SIGTERM raises Terminated in the main thread (in another thread nothing
    changes); the previous handler comes back at the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        if _State.depth:
            _State.pending = signum
            return
        raise _terminated(signum)

    def unraisable(info):
        if isinstance(info.exc_value, Terminated):
            os.kill(os.getpid(), signal.SIGTERM)  # ignored where it was raised: again
        else:
            previous_hook(info)

    previous, previous_hook = signal.signal(signal.SIGTERM, stop), sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook
        _State.pending = None
