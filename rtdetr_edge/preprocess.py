"""Image reading and the one preprocessing function every backend uses.

Preprocessing as released: resize (bilinear, no letterbox) to the model size, RGB, scale to [0, 1],
NCHW float32. The original (w, h) travels along so boxes come back in the original pixels.
"""

from pathlib import Path

import numpy as np

from .errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def to_rgb8(img: np.ndarray) -> np.ndarray:
    """Any OpenCV image (gray, BGR, BGRA; 8 or 16 bit; float) -> RGB uint8 [H, W, 3]."""
    import cv2

    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img.astype(np.float64) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_image(path) -> np.ndarray:
    """Read an image file as RGB uint8; a missing or unreadable file is a UserError naming it."""
    import cv2

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an image")
    if not path.is_file():
        raise UserError(f"{path}: image not found")
    # any depth and colour (16-bit, gray, CMYK become RGB uint8 below), with EXIF orientation applied as COCO
    # tools and viewers do: a portrait phone photo is processed upright (IMREAD_UNCHANGED would ignore it)
    img = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if img is None or img.size == 0:
        raise UserError(f"{path}: not a readable image")
    return to_rgb8(img)


def list_images(source) -> list:
    """An image file, or every image in a folder (sorted)."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise UserError(f"{source}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        return files
    if source.is_file():
        return [source]
    raise UserError(f"{source}: no such file or folder")


def resize_to(img: np.ndarray, imgsz) -> np.ndarray:
    """The one resize to the model size (h, w) everywhere -- training, evaluation, export's golden images,
    every runtime: bilinear, no letterbox, as released."""
    import cv2

    h, w = imgsz
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def preprocess(images, imgsz) -> tuple:
    """List of RGB uint8 images -> (batch float32 [N,3,H,W] in [0,1], orig sizes int64 [N,2] as (w, h))."""
    h, w = imgsz
    batch = np.empty((len(images), 3, h, w), dtype=np.float32)
    sizes = np.empty((len(images), 2), dtype=np.int64)
    for i, img in enumerate(images):
        sizes[i] = (img.shape[1], img.shape[0])
        batch[i] = resize_to(img, imgsz).transpose(2, 0, 1).astype(np.float32) / 255.0
    return batch, sizes
