import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(2)

SHAPES = ["circle", "square", "triangle", "star", "hexagon", "cross"]


@pytest.fixture(scope="session")
def r18_small():
    """An r18vd at 128 px with perturbed weights (shared, read-only)."""
    from hf_reference import randomize_
    from rtdetr_edge import build_model

    torch.manual_seed(0)
    return randomize_(build_model("rtdetrv2_r18vd", num_classes=7, imgsz=128)).eval()


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """A 6-class r18vd checkpoint at 128 px with perturbed weights (random weights already show parity)."""
    from hf_reference import randomize_
    from rtdetr_edge import build_model, save_checkpoint

    torch.manual_seed(0)
    model = randomize_(build_model("rtdetrv2_r18vd", num_classes=6, imgsz=128, class_names=SHAPES))
    path = tmp_path_factory.mktemp("w") / "w.pt"
    save_checkpoint(model, path)
    return path


@pytest.fixture(scope="session")
def bundles(weights, tmp_path_factory):
    """Bundles of the rest of the suite (exported once per session; read-only)."""
    from rtdetr_edge.export import export

    root = tmp_path_factory.mktemp("bundles")
    return {
        "onnx": export(weights, "onnx", out=root / "onnx"),
        "onnx_gather": export(weights, "onnx", imgsz=(96, 160), dynamic_batch=True, sampling="gather",
                              out=root / "onnx_gather"),
        "openvino": export(weights, "openvino", batch=2, out=root / "openvino"),
        "openvino16": export(weights, "openvino", precision="fp16", out=root / "openvino16"),
    }


@pytest.fixture(scope="session")
def tflite_bundles(weights, tmp_path_factory):
    """TFLite FP32 and FP16 bundles (conversion takes a minute or two; shared)."""
    from rtdetr_edge.export import export

    root = tmp_path_factory.mktemp("tflite")
    return {"fp32": export(weights, "tflite", out=root / "tflite"),
            "fp16": export(weights, "tflite", precision="fp16", out=root / "tflite16")}


@pytest.fixture(scope="session")
def target_bundles(weights, tmp_path_factory):
    """A bundle for every shipped target (export --target; ~4 minutes, shared)."""
    from rtdetr_edge.export import export
    from rtdetr_edge.targets import DATA

    root = tmp_path_factory.mktemp("targets")
    return {name: export(weights, target=name, out=root / name) for name in sorted(p.stem for p in (DATA / "recipes").glob("*.yaml"))}
