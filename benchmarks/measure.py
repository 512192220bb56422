"""What the benchmarks measure with: memory high-water marks, the machine, a matmul peak, and
interleaved timing (every implementation stepped in turn, so that load from other processes
hits each alike).

Peak memory of a step is the process's high-water mark during it (reset before each step
through /proc/self/clear_refs on Linux) and its rise over the RSS before it.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

GB = 1024 ** 3


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Memory: the process's high-water mark, resettable on Linux


def _status_kb(field: str) -> int | None:
    try:
        m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def rss_gb() -> float:
    kb = _status_kb("VmRSS")
    if kb is None:
        import psutil

        return psutil.Process().memory_info().rss / GB
    return kb * 1024 / GB


def reset_peak() -> bool:
    """Sets the high-water mark to the current RSS (Linux >= 4.0); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_gb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: the lifetime peak (ru_maxrss is bytes on macOS)
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r / GB if sys.platform == "darwin" else r * 1024 / GB
    return kb * 1024 / GB


def machine_info() -> dict:
    import numpy as np

    cpu = platform.processor()
    try:
        cpu = re.search(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1)
    except (OSError, AttributeError):
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "numpy": np.__version__,
            "mem_available_gb": mem_available_gb(), "xla_flags": os.environ.get("XLA_FLAGS", "")}
    if "jax" in sys.modules:
        import jax

        info.update(jax=jax.__version__, jax_backend=jax.default_backend())
    if "torch" in sys.modules:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def mem_available_gb() -> float | None:
    kb = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M) \
        if Path("/proc/meminfo").exists() else None
    return round(int(kb.group(1)) * 1024 / GB, 1) if kb else None


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def step_times(fn, reps: int) -> list[float]:
    """One untimed call, then `reps` timed calls: their times in seconds."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def median_time(fn, reps: int) -> float:
    return round(statistics.median(step_times(fn, reps)), 4)


def matmul_peak(n: int = 2048, reps: int = 5) -> dict:
    """Best-of-reps f32 GFLOP/s of an n x n matmul in jax, numpy and (if loaded) torch."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    flop = 2 * n ** 3
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
    out = {}

    def best(fn):
        return round(flop / min(step_times(fn, reps)) / 1e9, 1)

    ja, jb = jnp.asarray(a), jnp.asarray(b)
    dot = jax.jit(jnp.dot)
    out["jax"] = best(lambda: dot(ja, jb).block_until_ready())
    out["numpy"] = best(lambda: a @ b)
    if "torch" in sys.modules:
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        out["torch"] = best(lambda: ta @ tb)
    out["peak"] = max(out.values())
    return out


def interleaved(runners: dict, steps: int, warmup: int) -> tuple[dict, float]:
    """Warm-up, then `steps` rounds over all runners in rotating order.

    Returns (per-runner stats, the process's peak RSS in GB over set-up and warm-up)."""
    for name, run in runners.items():
        for _ in range(warmup):
            t = time.perf_counter()
            run()
            log(f"  warm-up {name}: {time.perf_counter() - t:.2f} s")
    names = list(runners)
    times = {n: [] for n in names}
    peaks = {n: [] for n in names}
    setup_peak = peak_gb()  # set-up, compilation and warm-up, before the first reset
    resettable = reset_peak()
    for r in range(steps):
        for name in names[r % len(names):] + names[:r % len(names)]:
            reset_peak()
            before = rss_gb()
            t = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - t)
            peaks[name].append((peak_gb(), peak_gb() - before))
        log(f"  round {r + 1}/{steps}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names))
    out = {}
    for n in names:
        med = statistics.median(times[n])
        out[n] = {"step_s_median": round(med, 4), "step_s_min": round(min(times[n]), 4),
                  "step_s_all": [round(t, 4) for t in times[n]],
                  "peak_rss_gb": round(max(p for p, _ in peaks[n]), 2),
                  "step_extra_rss_gb": round(max(d for _, d in peaks[n]), 2)}
        if not resettable:
            out[n]["peak_rss_gb_is_process_lifetime"] = True
    return out, round(setup_peak, 2)
