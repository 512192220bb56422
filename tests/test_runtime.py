"""Process start-up: the CLI's processes keep freed large blocks instead of returning them to
the kernel (runtime.keep_heap_resident), so that refilling one costs no page faults; opting
out or tuning malloc in the environment leaves glibc's behaviour as it was."""

import os
import platform
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")

# In a fresh process: the CLI's start-up (setup_runtime, as adarl_jax.cli.main runs it), then
# a thread that 6 times mallocs a 96 MiB block, writes every page and frees it (as XLA:CPU
# does with a step's temporaries; numpy is not used, as it asks for transparent huge pages). Prints the minor page faults of the last 5 rounds per page
# of the block (about 5 when each round faults its pages in afresh; near 0 when kept).
PROBE = r"""
import argparse, ctypes, resource, threading
from adarl_jax.cli.runtime import setup_runtime
setup_runtime(argparse.Namespace())
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
pages = (96 << 20) // 4096
out = []
def rounds():
    for i in range(6):
        if i == 1:
            start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(pages * 4096)
        ctypes.memset(block, 1, pages * 4096)
        libc.free(block)
    out.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / pages)
t = threading.Thread(target=rounds)
t.start(); t.join()
print(out[0])
"""


def _faults_per_page(**env) -> float:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES" and k != "ADARL_JAX_MALLOC"}
    base.update(ADARL_JAX_COMPILATION_CACHE="off", JAX_PLATFORMS="cpu",
                PYTHONPATH=os.pathsep.join([str(REPO), base.get("PYTHONPATH", "")]), **env)
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=base,
                         timeout=120, check=True)
    return float(run.stdout.strip().splitlines()[-1])


def test_cli_start_up_keeps_large_blocks_resident():
    assert _faults_per_page() < 0.5


def test_opting_out_leaves_glibc_returning_blocks():
    assert _faults_per_page(ADARL_JAX_MALLOC="off") > 4


@pytest.mark.parametrize("env", [{"MALLOC_ARENA_MAX": "8"}, {"MALLOC_MMAP_MAX_": "65536"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.mmap_max=65536"}])
def test_malloc_settings_in_the_environment_win(env):
    # the user's own tuning (here: glibc's defaults, spelt out) is kept as given
    assert _faults_per_page(**env) > 4
