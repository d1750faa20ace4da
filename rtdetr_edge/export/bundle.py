"""Bundles: an exported artifact + manifest.json + golden.npz, written atomically.

The golden data (a few generated images at the model size and the PyTorch model's outputs for them,
before and after top-k) travels with the artifact so it can be re-verified on the device it lands on
(`rtdetr-edge parity --model BUNDLE` without --weights).
"""

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

PREPROCESSING = {"resize": "bilinear to the input size, no letterbox", "color": "RGB", "scale": "1/255",
                 "mean": None, "std": None, "layout": "NCHW", "dtype": "float32"}


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions(*packages) -> dict:
    out = {"python": platform.python_version()}
    for name in ("rtdetr-edge", "torch", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@contextmanager
def atomic_dir(out, force=False):
    """Yield a temporary folder beside `out`; on success it becomes `out`, on failure it disappears."""
    out = Path(out)
    if out.exists():
        if not force:
            raise UserError(f"{out}: exists; choose another --out or pass --force")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a bundle is meant to be shared
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def golden_images(imgsz, n, seed=7):
    """n generated RGB uint8 images at the model size (h, w) and the 'original' sizes they stand for."""
    import cv2

    from ..data.synth import render_image

    h, w = imgsz
    images, sizes = [], []
    for i in range(n):
        img, _ = render_image(seed, "golden", i, max(h, w))
        images.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR))
        sizes.append((int(w * (1 + 0.5 * i)), int(h * (1 + 0.25 * i))))  # boxes scale back to these
    return np.stack(images), np.array(sizes, np.int64)


@torch.no_grad()
def golden_outputs(model, images_u8, sizes) -> dict:
    from ..model.postprocess import DeployModel

    x = torch.from_numpy(images_u8.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    raw = model(x)
    labels, boxes, scores = DeployModel(model).eval()(x, torch.from_numpy(sizes))
    return {"images": images_u8, "orig_target_sizes": sizes, "labels": labels.numpy(), "boxes": boxes.numpy(),
            "scores": scores.numpy(), "raw_scores": raw["pred_logits"].sigmoid().numpy(),
            "raw_boxes": raw["pred_boxes"].numpy()}


def golden_inputs(golden) -> tuple:
    """(images float32 [N,3,H,W] in [0,1], orig sizes [N,2]) from golden.npz contents."""
    return golden["images"].transpose(0, 3, 1, 2).astype(np.float32) / 255.0, golden["orig_target_sizes"]


def load_golden(bundle) -> dict:
    path = Path(bundle) / "golden.npz"
    if not path.is_file():
        raise UserError(f"{bundle}: no golden.npz in the bundle")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_manifest(folder, manifest: dict) -> dict:
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest["sha256"] = {str(p.relative_to(folder)): sha256(p) for p in files}
    manifest["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def check_hashes(bundle, manifest) -> list:
    """Files whose sha256 differs from the manifest (a damaged or edited bundle)."""
    bad = []
    for name, digest in manifest.get("sha256", {}).items():
        p = Path(bundle) / name
        if not p.is_file() or sha256(p) != digest:
            bad.append(name)
    return bad
