"""The runtime interface, the detections type every model and backend ends in, and backend selection."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

BACKEND_BY_SUFFIX = {".onnx": "onnxruntime", ".xml": "openvino", ".tflite": "tflite", ".engine": "tensorrt",
                     ".plan": "tensorrt", ".pt": "torch", ".pth": "torch"}


@dataclass
class Detections:
    """Detections of one image: labels [K] int, boxes [K,4] xyxy in original pixels, scores [K], best first."""

    labels: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self):
        return len(self.scores)

    def filter(self, conf: float) -> "Detections":
        keep = self.scores >= conf
        return Detections(self.labels[keep], self.boxes[keep], self.scores[keep])

    @staticmethod
    def from_batch(labels, boxes, scores) -> list:
        """Split batched post-processed outputs ([N,K], [N,K,4], [N,K]) into one Detections per image."""
        labels, boxes, scores = (np.asarray(a) for a in (labels, boxes, scores))
        return [Detections(labels[i].astype(np.int64), boxes[i].astype(np.float32), scores[i].astype(np.float32))
                for i in range(len(scores))]


class Runtime:
    """One loaded model. Subclasses implement `_run(images, sizes) -> (labels, boxes, scores)`."""

    backend = "?"

    def __init__(self, path, manifest=None):
        self.path = Path(path)
        self.manifest = manifest or {}
        m = self.manifest
        self.imgsz = tuple(m["input"]["imgsz"]) if m.get("input") else None
        self.batch = m.get("input", {}).get("batch")  # an int, or "dynamic"
        self.precision = m.get("precision", "fp32")
        self.class_names = m.get("class_names")
        # what the runtime really computes in, as far as it can tell (backends that know better override it):
        # an INT8 artifact names its form, since its float layers run at another precision
        form = (m.get("quantization") or {}).get("form")
        self.effective_precision = f"int8 {form}" if self.precision == "int8" and form else self.precision

    def infer(self, images: np.ndarray, sizes=None):
        """images [N,3,H,W] float32 in [0,1]; sizes [N,2] int (w, h), or None for a raw twin (outputs
        before top-k). A fixed-batch artifact is fed in chunks of its batch (the last chunk padded),
        so any N works. Returns the artifact's outputs as numpy arrays."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        sizes = None if sizes is None else np.ascontiguousarray(sizes, dtype=np.int64)
        fixed = self.batch if isinstance(self.batch, int) else None
        if not fixed or len(images) == fixed:
            return tuple(self._run(images, sizes))
        outs = []
        for start in range(0, len(images), fixed):
            chunk = images[start:start + fixed]
            csz = None if sizes is None else sizes[start:start + fixed]
            n = len(chunk)
            if n < fixed:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - n, 0)])
                csz = None if csz is None else np.concatenate([csz, np.repeat(csz[-1:], fixed - n, 0)])
            outs.append([o[:n] for o in self._run(chunk, csz)])
        return tuple(np.concatenate([o[i] for o in outs]) for i in range(len(outs[0])))

    def detect(self, images_rgb) -> list:
        from ..preprocess import preprocess

        batch, sizes = preprocess(images_rgb, self.imgsz)
        return Detections.from_batch(*self.infer(batch, sizes))

    def _run(self, images, sizes):
        raise NotImplementedError


# backend name -> (module, class), imported only when used: a device has one runtime installed, not all
BACKENDS = {"onnxruntime": ("onnxruntime", "OnnxRuntime"), "openvino": ("openvino", "OpenVinoRuntime"),
            "tflite": ("tflite", "TFLiteRuntime"), "tensorrt": ("tensorrt", "TensorRTRuntime"),
            "torch": ("pytorch", "TorchRuntime")}


def backend_class(name: str):
    import importlib

    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    module, cls = BACKENDS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def open_model(model, backend=None, imgsz=None, threads=None, sampling="grid_sample") -> Runtime:
    """The one opener: a bundle folder or exported file (.onnx, .xml, .tflite, .engine: its runtime), or a
    checkpoint (.pt/.pth, or a shipped model's name: PyTorch). predict, demo and benchmark open models here;
    verify and parity open bundles through load_runtime below."""
    path = Path(model)
    if path.suffix.lower() in (".pt", ".pth") or (not path.exists() and not path.suffix):
        if threads:
            import torch

            torch.set_num_threads(threads)
        return backend_class("torch")(model, imgsz=imgsz, sampling=sampling)
    if imgsz is not None:
        raise UserError(f"{model}: an exported model has a fixed input size (--imgsz is for checkpoints)")
    return load_runtime(path, backend=backend, **({"threads": threads} if threads else {}))


def load_runtime(bundle_or_file, backend=None, kind="model", verify_files=True, **options) -> Runtime:
    """A bundle folder (verified against its manifest first) or a bare model file; the backend follows
    from the file's suffix. `kind` picks a bundle's artifact: 'model' (shipped) or 'raw' (before top-k).
    verify_files=False reads the manifest without checking the files' hashes (`verify` reports them itself)."""
    from ..bundle import artifact as artifact_entry, bundle_file, open_bundle, read_manifest

    path = Path(bundle_or_file)
    manifest = None
    read = open_bundle if verify_files else read_manifest
    if path.is_dir():
        manifest = read(path)
        entry = artifact_entry(manifest, kind)
        if entry is None:
            raise UserError(f"{path}: the bundle has no {kind!r} artifact (export it again with this version)")
        artifact = bundle_file(path, entry["file"])
    elif path.is_file():
        artifact = path
        if (path.parent / "manifest.json").is_file() and path.suffix.lower() not in (".pt", ".pth"):
            manifest = read(path.parent)  # a file of a bundle: verified like the bundle
    elif path.exists():
        raise UserError(f"{path}: not a bundle folder or a model file")
    else:
        raise UserError(f"{path}: no such bundle or model file")
    if not artifact.is_file():
        raise UserError(f"{artifact}: artifact named in the manifest is missing")
    backend = backend or BACKEND_BY_SUFFIX.get(artifact.suffix.lower())
    if backend is None:
        raise UserError(f"{artifact}: unknown model format (known: {', '.join(sorted(BACKEND_BY_SUFFIX))})")
    return backend_class(backend)(artifact, manifest, **options)
