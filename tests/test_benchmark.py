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
