"""benchmarks/profile_ops.py: each XLA op of the train step timed from a profiler trace and
named with the model code it came from."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import profile_ops  # noqa: E402


def test_op_names_come_from_the_optimised_hlo_metadata():
    hlo = """
  %ynn_fusion.7 = f32[2,4]{1,0} fusion(%p0, %p1), kind=kCustom, calls=%c, metadata={op_name="jit(train_step)/jvp(ADARL)/domain/convs/block1/conv" stack_frame_id=3}
  ROOT %add.2 = f32[2]{0} add(%a, %b), metadata={op_name="jit(predict)/head/add"}
  %copy.1 = f32[2]{0} copy(%a)
"""
    assert profile_ops.op_names(hlo) == {"ynn_fusion.7": "jvp(ADARL)/domain/convs/block1/conv",
                                         "add.2": "head/add"}


def test_a_tiny_step_is_split_into_named_ops_that_add_up(capsys, monkeypatch):
    # the training processes' allocator setting is the default; off here (this process runs
    # other tests, and jax has started in it)
    monkeypatch.setenv("ADARL_JAX_MALLOC", "off")
    out = profile_ops.main(["--config", "smoke", "--batch", "4", "--steps", "2", "--warmup", "1",
                            "--top", "40"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line == json.loads(json.dumps(out))
    assert line["heap_resident"] is False
    assert 0 < len(line["top_ops"]) <= 40 and line["ops_total"] >= len(line["top_ops"])
    times = [r["ms"] for r in line["top_ops"]]
    assert times == sorted(times, reverse=True) and times[0] > 0
    assert 0 < line["ops_share"] <= 1.0 + 1e-9
    # each op rounded to 3 decimals, the total to 2
    assert sum(times) <= line["ops_ms_per_step"] + 0.0005 * len(times) + 0.005
    # the model's code is named: at least one op comes from a convolution of a pathway (the
    # 40 longest ops: the 5 longest of a batch of 4 need not hold one on a loaded host)
    assert any("convs" in r["code"] for r in line["top_ops"]), line["top_ops"]
