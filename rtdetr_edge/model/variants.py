"""The released RT-DETRv2 variants as data (hyper-parameters of the authors' configs: the five sizes and the
r18vd sampling-point ablation), and one narrow r18vd of ours for quick experiments on small images (and the test
suite): same code, fewer channels."""

from dataclasses import dataclass, field

from ..errors import UserError


@dataclass(frozen=True)
class Variant:
    name: str
    alias: str
    depth: int  # ResNet-vd depth
    enc_in_channels: tuple  # C3, C4, C5 channels of the backbone
    enc_hidden_dim: int = 256
    enc_dim_feedforward: int = 1024
    expansion: float = 1.0  # CSP-RepVGG width
    depth_mult: float = 1.0
    dec_layers: int = 6
    eval_idx: int = -1
    freeze_norm: bool = False  # frozen BatchNorm in the backbone, as released for 50/101
    freeze_at: int = -1
    hidden_dim: int = 256  # decoder width
    num_points: tuple = (4, 4, 4)
    published_ap: float = 0.0  # COCO val2017 AP the authors report at 640 (for reference only)
    released: bool = True  # False: not one of the authors' configs (no published checkpoint or AP)
    notes: str = field(default="")


VARIANTS = {v.name: v for v in [
    Variant("rtdetrv2_r18vd", "S", 18, (128, 256, 512), expansion=0.5, dec_layers=3, published_ap=47.9),
    # the authors' ablation on sampling points (their README): r18vd with 1, 2 or 3 points per level instead of 4,
    # released checkpoints, fewer samples for devices where grid_sample is slow
    *[Variant(f"rtdetrv2_r18vd_sp{n}", f"S sp{n}", 18, (128, 256, 512), expansion=0.5, dec_layers=3,
              num_points=(n, n, n), published_ap=ap, notes=f"{n} sampling point{'s' if n > 1 else ''} per level")
      for n, ap in ((1, 47.3), (2, 47.7), (3, 47.8))],
    Variant("rtdetrv2_r34vd", "M*", 34, (128, 256, 512), expansion=0.5, dec_layers=4, published_ap=49.9),
    Variant("rtdetrv2_r50vd_m", "M", 50, (512, 1024, 2048), expansion=0.5, dec_layers=6, eval_idx=2,
            freeze_norm=True, freeze_at=0, published_ap=51.9,
            notes="trains 6 decoder layers, evaluates with the 3rd"),
    Variant("rtdetrv2_r50vd", "L", 50, (512, 1024, 2048), freeze_norm=True, freeze_at=0, published_ap=53.4),
    Variant("rtdetrv2_r101vd", "X", 101, (512, 1024, 2048), enc_hidden_dim=384, enc_dim_feedforward=2048,
            freeze_norm=True, freeze_at=0, published_ap=54.3),
    # ours: the r18vd backbone with a 64-wide encoder and decoder (8 heads of 8), one CSP block per fusion and
    # one decoder layer: every part of the architecture, a third of r18vd's graph (ONNX nodes 333 vs 533)
    Variant("rtdetrv2_r18vd_narrow", "narrow r18vd", 18, (128, 256, 512), enc_hidden_dim=64, enc_dim_feedforward=256,
            expansion=0.5, depth_mult=0.34, dec_layers=1, hidden_dim=64, released=False,
            notes="not released by the authors: quick experiments on small images and the test suite"),
]}
DEFAULT_VARIANT = "rtdetrv2_r18vd"  # what `train` builds when neither --model nor --weights says


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise UserError(f"unknown model variant {name!r}; known variants: {', '.join(VARIANTS)}")
    return VARIANTS[name]


MAX_IMGSZ = 4096  # per side: beyond it a detector's buffers alone take gigabytes


def parse_imgsz(imgsz) -> tuple:
    """An int (square), an (h, w) pair or a string '640' / '480x640' (height x width) -> (h, w).

    Both sides must be positive multiples of 32 (the stride of C5).
    """
    if isinstance(imgsz, str):
        text = imgsz.lower().strip()
        try:
            parts = [int(p) for p in text.split("x")] if "x" in text else [int(text)]
            if len(parts) > 2:
                raise ValueError
        except ValueError:
            raise UserError(f"--imgsz: expected 640 or HEIGHTxWIDTH like 480x640, got {imgsz!r}") from None
        imgsz = parts[0] if len(parts) == 1 else tuple(parts)
    if isinstance(imgsz, int):
        size = (imgsz, imgsz)
    else:
        size = tuple(int(s) for s in imgsz)
    if len(size) != 2 or any(s <= 0 or s % 32 for s in size):
        raise UserError(f"imgsz must be a positive multiple of 32 (or HEIGHTxWIDTH of such), got {imgsz!r}")
    if any(s > MAX_IMGSZ for s in size):
        raise UserError(f"imgsz {size[0]}x{size[1]}: at most {MAX_IMGSZ} per side")
    return size
