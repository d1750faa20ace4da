"""`export`: one checkpoint -> one verified bundle (artifact, manifest.json, golden.npz).

One file per format (onnx.py, openvino.py, tflite.py); this module only orchestrates. Adding a
format does not touch the model.
"""

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..model.checkpoint import load_model
from ..model.postprocess import DeployModel
from ..model.variants import parse_imgsz
from .bundle import PREPROCESSING, atomic_dir, golden_images, golden_outputs, versions, write_manifest

log = logging.getLogger("rtdetr_edge")

FORMATS = ("onnx", "openvino", "tflite")
PRECISIONS = ("fp32", "fp16")
ARTIFACT = {"onnx": "model.onnx", "openvino": "model.xml", "tflite": "model.tflite"}
CONVERTER_PACKAGES = {"onnx": ("onnx", "onnxruntime", "onnxslim"),
                      "openvino": ("onnx", "openvino"), "tflite": ("litert-torch", "ai-edge-litert")}


def default_sampling(fmt: str) -> str:
    """TFLite has no GridSample op: its default is the gather sampler (same bilinear numbers)."""
    return "gather" if fmt == "tflite" else "grid_sample"


def _check(fmt, precision, batch, dynamic_batch):
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if precision not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if batch < 1:
        raise UserError(f"--batch must be >= 1, got {batch}")
    if fmt == "onnx" and precision == "fp16":
        raise UserError("ONNX FP16 is not offered: onnxconverter-common wrote graphs onnxruntime rejects (mixed "
                        "float16/float types); export FP32 ONNX and let the runtime choose FP16 (trtexec --fp16), "
                        "or use --format openvino/tflite --precision fp16")
    if dynamic_batch and fmt == "tflite":
        raise UserError("--dynamic-batch is not supported for TFLite (fixed shapes); give --batch N")


def write_artifact(model, fmt, precision, folder, imgsz, batch, dynamic_batch=False, raw=False) -> dict:
    """Export `model` (deploy form, eval) into `folder` as ARTIFACT[fmt]; returns converter facts.

    raw=True writes the graph that outputs scores/boxes before top-k (used by parity)."""
    from .onnx import RawOutputs, export_onnx

    folder = Path(folder)
    h, w = imgsz
    example_batch = 2 if dynamic_batch else batch
    x = torch.rand(example_batch, 3, h, w, generator=torch.Generator().manual_seed(0))
    sizes = torch.tensor([[w, h]] * example_batch, dtype=torch.int64)
    module = (RawOutputs(model) if raw else DeployModel(model)).eval()
    example = (x,) if raw else (x, sizes)
    target = folder / ARTIFACT[fmt]
    if fmt == "tflite":
        from .tflite import export_tflite
        return export_tflite(module, target, example, precision)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx" if fmt == "openvino" else target
        facts = export_onnx(module, onnx_path, example, dynamic_batch=dynamic_batch, raw=raw)
        if fmt == "openvino":
            from .openvino import export_openvino
            facts.update(export_openvino(onnx_path, target, precision))
    return facts


def export(weights, fmt="onnx", precision="fp32", imgsz=None, batch=1, dynamic_batch=False, sampling=None,
           out=None, force=False) -> Path:
    """Export a checkpoint to a bundle folder; returns its path. A failed export leaves nothing behind."""
    _check(fmt, precision, batch, dynamic_batch)
    sampling = sampling or default_sampling(fmt)
    model = load_model(weights, imgsz=parse_imgsz(imgsz) if imgsz else None, sampling=sampling).deploy()
    imgsz = model.imgsz
    out = Path(out) if out else Path("exports") / f"{model.variant}_{imgsz[0]}x{imgsz[1]}_{fmt}_{precision}"
    with atomic_dir(out, force=force) as tmp:
        facts = write_artifact(model, fmt, precision, tmp, imgsz, batch, dynamic_batch)
        n = 2 if dynamic_batch else batch
        images, sizes = golden_images(imgsz, n)
        golden = golden_outputs(model, images, sizes)
        np.savez_compressed(tmp / "golden.npz", **golden)
        manifest = {
            "format": fmt, "artifact": ARTIFACT[fmt], "precision": precision, "sampling": sampling,
            "variant": model.variant, "num_classes": model.num_classes, "class_names": model.class_names,
            "weights": str(weights),
            "input": {"imgsz": list(imgsz), "batch": "dynamic" if dynamic_batch else batch,
                      "names": ["images", "orig_target_sizes"],
                      "images": "float32 [N,3,H,W] RGB in [0,1]", "orig_target_sizes": "[N,2] (width, height)"},
            "outputs": {"labels": "[N,300] class index", "boxes": "[N,300,4] xyxy in original pixels",
                        "scores": "[N,300] sigmoid score, best first"},
            "preprocessing": PREPROCESSING, "converter": facts, "golden": "golden.npz",
            "versions": versions(*CONVERTER_PACKAGES[fmt]),
        }
        write_manifest(tmp, manifest)
    return out
