"""The benchmark runs and reports; its numbers are not asserted (they are the machine's)."""
import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT


@pytest.mark.slow
def test_benchmark_runs_a_few_steps_and_prints_its_table(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_train.py"),
                             "--variants=default,fast", "--steps=3", "--repeats=2", "--no-e2e", f"--json={out}"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["variant", "ms/step", "steps/s", "vs", "default"]
    assert lines[1].startswith("default ") and " 1.00x " in lines[1]
    assert lines[2].startswith("fast ") and lines[3].startswith("floor ")
    results = json.loads(out.read_text())
    assert set(results["step_ms"]) == {"default", "fast"}
    assert all(len(r["all"]) == 2 and r["median"] > 0 for r in results["step_ms"].values())
    assert results["floor_ms"] > 0 and results["data_loading_s"] > 0


def test_the_bfloat16_floor_is_the_same_work_at_tensorflows_bfloat16_rate():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import bench_train

    fp32_ms, fp32 = bench_train.floor_ms(recurrent_repeats=3)
    bf16_ms, bf16 = bench_train.floor_ms(bench_train.bf16_gemm_rate, recurrent_repeats=3)
    assert bf16["step_gflop"] == fp32["step_gflop"] and bf16_ms > 0 and fp32_ms > 0
    forward, backward = bench_train.step_flops()  # the floor is that work at those two rates
    assert bf16_ms == pytest.approx(((forward + backward / 2) / bf16["recurrent_gflops"]
                                     + backward / 2 / bf16["weight_gradient_gflops"]) / 1e6)
    results = {"step_ms": {"fast-bf16": {"median": 2 * bf16_ms}}, "floor_ms": fp32_ms, "gemm": fp32,
               "floor_bf16_ms": bf16_ms, "gemm_bf16": bf16, "skipped": {}, "data_loading_s": 0.5}
    lines = bench_train.report(results).splitlines()
    assert lines[2].startswith("floor ") and lines[3].startswith("floor-bf16 ") and "bfloat16, TF" in lines[3]
    assert "against its own floor: fast-bf16 2.00x" in lines


def test_the_lengths_table_gives_each_cells_rate_and_the_ratios_at_each_length():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import bench_train

    def rate(examples_per_s, first_step_s):
        return {"examples_per_s": examples_per_s, "first_step_s": first_step_s}
    results = {"lengths": {28: {"default": rate(5000, 0.4), "fast": rate(9000, 1.0)},
                           784: {"default": rate(180, 2.0), "fast": rate(340, 3.2), "pytorch": rate(170, 0.1)}},
               "skipped": {}}
    lines = bench_train.report_lengths(results).splitlines()
    assert lines[2].split() == ["28", "28", "fast", "9000", "1.0s"]
    assert lines[3] == "   28 steps: fast / default 1.80x"  # no PyTorch here: no ratio to it
    assert lines[5].split() == ["784", "1", "fast", "340", "3.2s"]
    assert lines[7] == "  784 steps: fast / default 1.89x, fast / pytorch 2.00x, pytorch / default 0.94x"
