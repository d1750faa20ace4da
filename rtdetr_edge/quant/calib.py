"""Calibration lists: the images that set INT8 ranges (QAT's starting ranges, PTQ, and the TFLite and
onnxruntime quantizers). A list is one of:

- a shipped name: `calib/NAME.yaml` (e.g. `shapes-64`);
- a `.txt` file: one image path per line, relative to the list's folder; `#` starts a comment;
- a `.yaml` file with either `images: [paths]` (relative to the file), `folder: DIR` (+ optional `count`),
  or `generate: {count: N, seed: S}`: N images of the generated shapes set (rtdetr_edge.data.synth),
  rendered at the model's size: the embedded default needs nothing on disk;
- a folder of images.

Every problem is one line naming the list (and the line or image).
"""

from pathlib import Path

import numpy as np

from ..errors import UserError

CALIB_KEYS = ("description", "images", "folder", "count", "generate")


def calib_dir() -> Path:
    from ..paths import data_dir

    return data_dir("calib")


def _read_yaml(path):
    from .. import yamlfile

    data = yamlfile.load(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: a calibration list is a mapping with one of images, folder, generate")
    unknown = [k for k in data if k not in CALIB_KEYS]
    if unknown:
        raise UserError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(CALIB_KEYS)})")
    given = [k for k in ("images", "folder", "generate") if k in data]
    if len(given) != 1:
        raise UserError(f"{path}: give exactly one of images, folder, generate (got {', '.join(given) or 'none'})")
    return data


def _count(value, where, default=None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{where}: count must be an integer >= 1, got {value!r}")
    return value


class CalibList:
    """A resolved list: `load(imgsz)` gives the images as RGB uint8 at the model size."""

    def __init__(self, spec):
        self.spec = str(spec)
        path = Path(self.spec)
        if not path.exists() and not path.suffix and (calib_dir() / f"{spec}.yaml").is_file():
            path = calib_dir() / f"{spec}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in calib_dir().glob("*.yaml"))
            raise UserError(f"--calib {spec}: no such list, folder or shipped list (shipped: {', '.join(known)})")
        self.path, self.files, self.generate = path, None, None
        if path.is_dir():
            from ..preprocess import list_images

            self.files = list_images(path)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = _read_yaml(path)
            if "images" in data:
                if not isinstance(data["images"], list) or not data["images"]:
                    raise UserError(f"{path}: images must be a non-empty list of paths")
                self.files = [path.parent / str(p) for p in data["images"]]
            elif "folder" in data:
                from ..preprocess import list_images

                files = list_images(path.parent / str(data["folder"]))
                self.files = files[:_count(data.get("count"), str(path), default=len(files))]
            else:
                gen = data["generate"]
                if not isinstance(gen, dict) or set(gen) - {"count", "seed"}:
                    raise UserError(f"{path}: generate takes count and seed, e.g. {{count: 64, seed: 101}}")
                seed = gen.get("seed", 101)
                if isinstance(seed, bool) or not isinstance(seed, int):
                    raise UserError(f"{path}: generate.seed must be an integer, got {seed!r}")
                self.generate = (_count(gen.get("count"), f"{path}: generate"), seed)
        elif path.suffix.lower() == ".txt":
            lines = path.read_text(errors="replace").splitlines()
            self.files = []
            for i, line in enumerate(lines, 1):
                line = line.split("#", 1)[0].strip()
                if line:
                    self.files.append((path.parent / line, i))
            if not self.files:
                raise UserError(f"{path}: the list names no images")
            missing = [(f, i) for f, i in self.files if not f.is_file()]
            if missing:
                f, i = missing[0]
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise UserError(f"{path}:{i}: {f}: image not found{more}")
            self.files = [f for f, _ in self.files]
        else:
            raise UserError(f"--calib {path}: expected a .txt or .yaml list, or a folder of images")

    def __len__(self):
        return self.generate[0] if self.generate else len(self.files)

    def describe(self) -> dict:
        d = {"list": str(self.path), "images": len(self)}
        if self.generate:
            d["generated"] = {"count": self.generate[0], "seed": self.generate[1]}
        return d

    def load(self, imgsz, limit=None) -> np.ndarray:
        """[N,H,W,3] uint8 RGB at the model size (h, w)."""
        from ..preprocess import read_image, resize_to

        n = len(self) if limit is None else min(limit, len(self))
        out = []
        if self.generate:
            from ..data.synth import render_image

            for i in range(n):
                img, _ = render_image(self.generate[1], "calib", i, max(imgsz))
                out.append(resize_to(img, imgsz))
        else:
            for f in self.files[:n]:
                try:
                    out.append(resize_to(read_image(f), imgsz))
                except UserError as e:
                    raise UserError(f"{self.path}: {e}") from None
        return np.stack(out)

    def batches(self, imgsz, batch=4, limit=None):
        """Float32 [B,3,H,W] batches in [0,1], as every runtime is fed."""
        images = self.load(imgsz, limit)
        x = images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        return [x[i:i + batch] for i in range(0, len(x), batch)]


def load_calib(spec) -> CalibList:
    return CalibList(spec)
