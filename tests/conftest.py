import json
import os
import sys
from pathlib import Path

import pytest
import torch
from filelock import FileLock

sys.path.insert(0, str(Path(__file__).parent))
# .ci/run runs two pytest-xdist workers on two cores: one thread each; a single process takes both
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
torch.set_num_threads(1 if WORKER else 2)

SHAPES = ["circle", "square", "triangle", "star", "hexagon", "cross"]
# the suite's model: every part of RT-DETRv2 (r18vd backbone, AIFI + CCFM, deformable decoder) at a third of
# r18vd's graph, so exports and conversions take half the time (the released variants keep their own tests:
# parameter counts, the authors' layouts, the reference implementation)
TEST_VARIANT = "rtdetrv2_r18vd_narrow"


def random_checkpoint(path, variant=TEST_VARIANT, seed=0, class_names=SHAPES):
    """A checkpoint of `variant` at 128 px with perturbed weights (torch seeded with `seed` first)."""
    from hf_reference import randomize_
    from rtdetr_edge import build_model, save_checkpoint

    torch.manual_seed(seed)
    model = build_model(variant, num_classes=len(class_names), imgsz=128, class_names=list(class_names))
    save_checkpoint(randomize_(model), path)
    return path


@pytest.fixture(scope="session")
def r18_small():
    """An r18vd at 128 px with perturbed weights (shared, read-only): the released variant, for the tests
    against the reference implementation and checkpoint layouts."""
    from hf_reference import randomize_
    from rtdetr_edge import build_model

    torch.manual_seed(0)
    return randomize_(build_model("rtdetrv2_r18vd", num_classes=7, imgsz=128)).eval()


def shared(tmp_path_factory, name, build):
    """Build once per run, whichever worker asks first: under pytest-xdist every worker runs the session
    fixtures, so the first builds `build(folder)` under a file lock and the others wait and read the result
    (a path or a dict of paths). Read-only for the tests."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if WORKER else root  # the workers' base folders sit side by side in the run's
    folder, done = root / f"shared-{name}", root / f"shared-{name}.json"
    with FileLock(str(root / f"shared-{name}.lock")):
        if done.is_file():
            value = json.loads(done.read_text())
            return {k: Path(v) for k, v in value.items()} if isinstance(value, dict) else Path(value)
        folder.mkdir(exist_ok=True)
        value = build(folder)
        done.write_text(json.dumps({k: str(v) for k, v in value.items()} if isinstance(value, dict) else str(value)))
        return value


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """A 6-class checkpoint of the suite's narrow r18vd at 128 px with perturbed weights (random weights already
    show parity)."""
    return shared(tmp_path_factory, "weights", lambda folder: random_checkpoint(folder / "w.pt"))


@pytest.fixture(scope="session")
def bundles(weights, tmp_path_factory):
    """Bundles of the rest of the suite, each exported once per run when a test first asks for it (a test that
    needs the ONNX bundle does not wait for the OpenVINO ones; read-only)."""
    return LazyBundles(weights, tmp_path_factory)


BUNDLES = {
    "onnx": dict(format="onnx"),
    "onnx_gather": dict(format="onnx", imgsz=(96, 160), dynamic_batch=True, sampling="gather"),
    "openvino": dict(format="openvino", batch=2),
    "openvino16": dict(format="openvino", precision="fp16"),
}


class LazyBundles(dict):
    def __init__(self, weights, tmp_path_factory):
        super().__init__()
        self.weights, self.factory = weights, tmp_path_factory

    def __missing__(self, key):
        from rtdetr_edge.export import export

        options = BUNDLES[key]  # a KeyError names an unknown bundle
        path = self[key] = shared(self.factory, f"bundle-{key}",
                                  lambda root: export(self.weights, out=root / key, **options))
        return path


# Every TFLite conversion of the suite runs in one child process (CONVERT), never in a test process: JAX/XLA's
# threads and memory stay out of the workers (which fork: DataLoader workers, and JAX warns that a fork of its
# multithreaded process may deadlock). In that one child each network is converted once: the
# FP16 file is the FP32 one with its weights cast, static INT8 is quantized from it, and the arm64 and
# raspberry-pi-5 targets copy them (export._reused). Their tests form one xdist group that starts first.
TFLITE_FIXTURES = {"tflite_bundles", "target_bundles"}
CONVERT = """
import json, sys
from pathlib import Path
from rtdetr_edge.export import export
from rtdetr_edge.targets import DATA
weights, root = sys.argv[1], Path(sys.argv[2])
(root / "four.yaml").write_text("generate: {count: 4, seed: 5}\\n")
out = {"tflite:fp32": export(weights, "tflite", out=root / "tflite"),
       "tflite:fp16": export(weights, "tflite", precision="fp16", out=root / "tflite16"),
       "tflite:int8": export(weights, "tflite", precision="int8", calib=str(root / "four.yaml"), out=root / "tflite8")}
for name in sorted(p.stem for p in (DATA / "recipes").glob("*.yaml")):
    out["target:" + name] = export(weights, target=name, out=root / "targets" / name)
print(json.dumps({k: str(v) for k, v in out.items()}))
"""


def _convert(weights, root):
    import subprocess

    r = subprocess.run([sys.executable, "-c", CONVERT, str(weights), str(root)], capture_output=True, text=True,
                       timeout=3600)
    assert r.returncode == 0, r.stderr[-4000:]
    return {k: Path(v) for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}


@pytest.fixture(scope="session")
def converted(weights, tmp_path_factory):
    return shared(tmp_path_factory, "converted", lambda root: _convert(weights, root))


@pytest.fixture(scope="session")
def tflite_bundles(converted):
    """TFLite bundles of the test checkpoint: "fp32", "fp16", and "int8" (static, calibrated on four generated
    images)."""
    return {k.split(":", 1)[1]: v for k, v in converted.items() if k.startswith("tflite:")}


@pytest.fixture(scope="session")
def target_bundles(converted):
    """A bundle for every shipped target (export --target). Targets that share an artifact (the Orins and
    Thor, the Xaviers, nano and TX2, arm64 and raspberry-pi-5 with tflite_bundles) convert it once."""
    return {k.split(":", 1)[1]: v for k, v in converted.items() if k.startswith("target:")}


@pytest.fixture(scope="session")
def shapes_onnx(tmp_path_factory):
    """The shipped model exported to ONNX (demo and shipped-model tests)."""
    from rtdetr_edge.export import export

    return shared(tmp_path_factory, "shapes_onnx", lambda root: export("shapes", "onnx", out=root / "onnx"))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (--dist loadgroup) a file's tests stay together (its module fixtures are built
    once), and the tests of the TFLite fixtures form one group that starts first (the longest chain)."""
    for item in items:
        if not any(m.name == "xdist_group" for m in item.iter_markers()):
            group = "tflite" if TFLITE_FIXTURES & set(item.fixturenames) else item.module.__name__
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: "tflite" not in item.get_closest_marker("xdist_group").args)
