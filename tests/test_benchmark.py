"""The benchmark runs and reports; its numbers are not asserted (they are the machine's)."""
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT


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
