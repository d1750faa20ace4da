"""benchmarks/cuda_check.py, the GPU check kept ready: its CPU-side parts run here (training steps, FP32
activation ranges against FP16's limit); the CUDA parts say they were skipped instead of pretending."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "cuda_check.py"


def test_the_cuda_check_runs_its_cpu_parts(tmp_path):
    spec = importlib.util.spec_from_file_location("cuda_check", SCRIPT)
    cuda_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cuda_check)
    out = tmp_path / "report.json"
    assert cuda_check.main(["--device", "cpu", "--imgsz", "64", "--steps", "3", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["ok"]
    train = report["train_amp"]
    assert len(train["losses"]) == 3 and train["losses"][-1] < train["losses"][0] and not train["nonfinite_gradients"]
    ranges = report["fp16_vs_fp32"]
    assert ranges["modules"] > 100 and ranges["largest_fp32_activations"][0]["max_abs"] > 0
    assert ranges["over_fp16_max"] == [] and "skipped" in ranges["fp16_deviation"]
    assert "skipped" in report["latency"]
