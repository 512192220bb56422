"""One writer per fold: a second run on overlapping folds is refused naming the owner; disjoint
folds share a workdir; stale locks (dead process, silent other host, reused pid) are taken
over; worker processes inherit their parent's locks."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from adarl_jax.workdir import locks
from adarl_jax.workdir.locks import FoldLocks, WorkdirLockedError, live_foreign_locks, lock_path

HOLDER = ("import sys, time; from adarl_jax.workdir.locks import FoldLocks; "
          "FoldLocks(sys.argv[1], [int(f) for f in sys.argv[2].split(',')], command='holder job')"
          ".acquire(); print('held', flush=True); sys.stdin.read()")


@pytest.fixture
def holder(tmp_path):
    """Starts a process that locks folds (given as '1,2') of tmp_path/w until it is killed."""
    procs = []

    def start(folds: str, env=None):
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "w"), folds],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, **(env or {})})
        assert p.stdout.readline().strip() == "held"
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_lock_file_names_its_owner_and_release_removes_it(tmp_path):
    w = tmp_path / "w"
    with FoldLocks(w, [3, 1], command="adarl-jax train x"):
        owner = json.loads(lock_path(w, 1).read_text())
        assert (owner["pid"], owner["host"], owner["command"]) == (
            os.getpid(), socket.gethostname(), "adarl-jax train x")
        assert sorted(p.name for p in (w / ".locks").iterdir()) == ["fold_01.lock", "fold_03.lock"]
        with FoldLocks(w, [1]):  # this process again (prepare, then run): already ours
            pass
        assert lock_path(w, 1).exists()  # the inner one did not take it, so it leaves it
    assert list((w / ".locks").iterdir()) == []


def test_overlapping_folds_are_refused_and_disjoint_folds_share_the_workdir(tmp_path, holder):
    w = tmp_path / "w"
    p = holder("1,2")
    with pytest.raises(WorkdirLockedError) as e:
        FoldLocks(w, [2, 3]).acquire()
    msg = str(e.value)
    assert f"pid {p.pid} on host {socket.gethostname()}" in msg and "holder job" in msg
    assert "fold(s) 2 " in msg and str(lock_path(w, 2)) in msg
    assert not lock_path(w, 3).exists()  # all or none
    with FoldLocks(w, [0, 3]):
        assert lock_path(w, 3).exists()
    assert set(live_foreign_locks(w)) == {1, 2}


def test_lock_of_a_killed_process_is_taken_over_with_a_warning(tmp_path, holder, caplog):
    w = tmp_path / "w"
    p = holder("1,2")
    p.send_signal(signal.SIGKILL)
    p.wait()
    with caplog.at_level(logging.WARNING, logger="adarl_jax.workdir.locks"):
        with FoldLocks(w, [2]):
            assert json.loads(lock_path(w, 2).read_text())["pid"] == os.getpid()
    assert "taking over the stale lock" in caplog.text and f"pid {p.pid}" in caplog.text
    assert live_foreign_locks(w) == {}  # fold 1's lock is stale too


def test_workers_inherit_their_parents_locks(tmp_path, holder):
    w = tmp_path / "w"
    with FoldLocks(w, [0, 1, 2]):
        child = holder("1", env={locks.PARENT_ENV: locks.parent_marker()})
        owner = json.loads(lock_path(w, 1).read_text())
        assert owner["pid"] == os.getpid()
        assert [x["pid"] for x in owner["workers"]] == [child.pid]
        stranger = subprocess.run([sys.executable, "-c", HOLDER, str(w), "2"], input="",
                                  capture_output=True, text=True)
        assert stranger.returncode != 0 and "WorkdirLockedError" in stranger.stderr
    assert not lock_path(w, 1).exists()


def test_a_lock_lives_while_any_of_its_workers_runs(tmp_path, holder):
    w = tmp_path / "w"
    live = holder("5")  # stands in for a worker whose parent has died
    path = lock_path(w, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": live.pid + 10**6, "host": socket.gethostname(),
                                "workers": [{"pid": live.pid, "started": locks._start_time(live.pid)}]}))
    with pytest.raises(WorkdirLockedError):
        FoldLocks(w, [0]).acquire()


def test_a_reused_pid_does_not_keep_a_lock(tmp_path, holder):
    w = tmp_path / "w"
    other = holder("5")
    path = lock_path(w, 0)
    path.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(), "started": "1"}))
    if locks._start_time(other.pid) is None:
        pytest.skip("no /proc start times here")
    with FoldLocks(w, [0]):
        assert json.loads(path.read_text())["pid"] == os.getpid()


@pytest.mark.parametrize("content", [{"pid": 1, "host": "elsewhere"}, None])
def test_other_hosts_and_unreadable_locks_turn_stale_when_not_refreshed(tmp_path, content):
    w = tmp_path / "w"
    path = lock_path(w, 4)
    path.parent.mkdir(parents=True)
    path.write_text("{not json" if content is None else json.dumps(content))
    with pytest.raises(WorkdirLockedError):
        FoldLocks(w, [4]).acquire()
    old = time.time() - 2 * locks.STALE_AFTER_S
    os.utime(path, (old, old))
    with FoldLocks(w, [4]):
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_the_owner_refreshes_its_locks(tmp_path):
    w = tmp_path / "w"
    held = FoldLocks(w, [0], heartbeat_s=0.01).acquire()
    old = time.time() - 2 * locks.STALE_AFTER_S
    os.utime(lock_path(w, 0), (old, old))
    deadline = time.time() + 30
    while lock_path(w, 0).stat().st_mtime == old and time.time() < deadline:
        time.sleep(0.01)
    held.release()
    assert not lock_path(w, 0).exists()
    assert deadline > time.time(), "the heartbeat never touched the lock"
