"""The device side without PyTorch: a fresh Python 3.10 virtual environment (JetPack 6's Python) with the
core package and two runtimes only -- no torch installed -- loads an ONNX and a TFLite bundle made by the
rest of the suite, runs `predict` and the golden-data check (parity without --weights) on them, through
the CLI and the Python API, and PyTorch is never imported."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
PY310 = Path.home() / ".pyenv" / "versions" / "3.10.13" / "bin" / "python"


def _python310():
    if PY310.is_file():
        return str(PY310)
    found = shutil.which("python3.10")
    if not found:
        pytest.fail("Python 3.10 is needed for the device-side test (pyenv 3.10.13 or python3.10 on PATH)")
    return found


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory):
    venv = tmp_path_factory.mktemp("device") / "venv"
    subprocess.run([_python310(), "-m", "venv", str(venv)], check=True, timeout=300)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-compile", str(REPO), "onnxruntime", "ai-edge-litert"],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return venv


# the device environment runs its own installed package: a PYTHONPATH of the test run must not leak in
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


SCRIPT = """
import sys
try:
    import torch  # noqa: F401
    raise SystemExit("torch is importable in the device environment")
except ImportError:
    pass
from rtdetr_edge.parity import parity
from rtdetr_edge.predict import predict

bundles, images = sys.argv[1:3], sys.argv[3]
report = parity(bundles)  # the golden-data check: stored PyTorch outputs are the reference
for a in report["artifacts"]:
    m = a["metrics"]
    assert a["ok"], a["broken"]
    assert m["raw_score_max"] <= 1e-4 and m["top100_match"] == 1.0, m
for bundle in bundles:
    found = list(predict(bundle, images, conf=0.0, exported=True))
    assert len(found) == 2 and all(len(det) == 300 for _, det, _ in found)
from rtdetr_edge.zoo import shipped_models
assert "shapes" in shipped_models()  # the reference model travels in the built package (listing needs no torch)
assert "torch" not in sys.modules, "torch was imported"
print(sys.version_info[:2], "ok")
"""


def test_bundles_run_and_verify_without_torch_on_python_310(tflite_bundles, bundles, device_venv, tmp_path):
    from rtdetr_edge.data.synth import generate

    data = generate(tmp_path / "d", 0, 2, 128, seed=2)
    py, cli = device_venv / "bin" / "python", device_venv / "bin" / "rtdetr-edge"
    onnx_b, tflite_b = str(bundles["onnx"]), str(tflite_bundles["fp32"])
    r = subprocess.run([str(py), "-c", SCRIPT, onnx_b, tflite_b, str(data / "val")], capture_output=True, text=True,
                       timeout=600, cwd=tmp_path, env=ENV)
    assert r.returncode == 0 and "(3, 10) ok" in r.stdout, r.stdout + r.stderr[-3000:]
    r = subprocess.run([str(cli), "parity", "--model", onnx_b, "--model", tflite_b, "--report", str(tmp_path / "rep")],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path, env=ENV)
    assert r.returncode == 0 and "pass" in r.stdout, r.stdout + r.stderr[-3000:]
    assert (tmp_path / "rep" / "parity.json").is_file() and (tmp_path / "rep" / "parity.png").is_file()
    r = subprocess.run([str(cli), "predict", "--model", tflite_b, "--source", str(data / "val"), "--save",
                        str(tmp_path / "drawn")], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=ENV)
    assert r.returncode == 0 and "val_000001.jpg" in r.stdout, r.stdout + r.stderr[-3000:]
    assert len(list((tmp_path / "drawn").glob("*.jpg"))) == 2
    # a checkpoint needs the host side: one line, exit 2, not a traceback
    r = subprocess.run([str(cli), "predict", "--weights", str(tmp_path / "w.pt"), "--source", str(data / "val")],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path, env=ENV)
    assert r.returncode == 2 and "PyTorch is not installed" in r.stderr and "Traceback" not in r.stderr


def test_targets_and_verify_from_the_built_package_without_torch(device_venv, target_bundles, tflite_bundles, tmp_path):
    """Installed from a built package (not editable): the YAML files travel with it; verify needs no torch."""
    cli = device_venv / "bin" / "rtdetr-edge"
    r = subprocess.run([str(cli), "targets"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=ENV)
    assert r.returncode == 0, r.stderr[-3000:]
    for name in target_bundles:
        assert name in r.stdout
    r = subprocess.run([str(cli), "targets", "jetson"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=ENV)
    assert r.returncode == 0 and "site-packages" in r.stdout.replace("\n", ""), r.stdout + r.stderr[-3000:]
    for bundle in (target_bundles["jetson-nano"], target_bundles["jetson-orin-nano"], tflite_bundles["fp32"]):
        r = subprocess.run([str(cli), "verify", str(bundle), "--json", str(tmp_path / "v.json")], capture_output=True,
                           text=True, timeout=600, cwd=tmp_path, env=ENV)
        assert r.returncode == 0 and "verified" in r.stdout, r.stdout + r.stderr[-3000:]

