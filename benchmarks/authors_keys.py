"""Record the authors' RT-DETRv2 state_dict as their own code writes it, for the checkpoint tests
(`tests/data/authors_keys_*.json`). Not part of CI: it needs their repository on disk.

Per variant it records every key with its shape and dtype at 640x640 (`keys`, `dtypes`) and, built again
at a small size (`small`, 32x416 by default: wide enough that their anchors hold +inf), the *values* of every buffer that is not a BatchNorm running
statistic: `decoder.anchors` with the +inf their `_generate_anchors` writes outside the valid border,
`decoder.valid_mask`, `num_points_scale`, BatchNorm's `num_batches_tracked`. The tests build their
"authors' checkpoint" from this record, so a test fails whenever a real authors' file would.

    # bring their repository (e.g. the search tool's fetch of lyuwenyu/RT-DETR), then:
    python benchmarks/authors_keys.py --repo /path/to/RT-DETR/rtdetrv2_pytorch --out tests/data

Their package imports torchvision everywhere (transforms, criterion, post-processing) and no CPU build
of torchvision installs beside torch 2.13 here, so torchvision is stubbed: the three model modules
(PResNet, HybridEncoder, RTDETRTransformerv2) use none of it to build their parameters.
"""

import argparse
import importlib.abc
import importlib.machinery
import json
import sys
import types
from pathlib import Path
from unittest import mock

# the authors' configs (configs/rtdetrv2/*.yml and include/rtdetrv2_r50vd.yml), what differs per variant
VARIANTS = {
    "rtdetrv2_r18vd": dict(depth=18, freeze_norm=False, in_channels=[128, 256, 512], expansion=0.5, num_layers=3),
    # their sampling-point ablation (configs/rtdetrv2/rtdetrv2_r18vd_sp{1,2,3}_120e_coco.yml): num_points per level
    **{f"rtdetrv2_r18vd_sp{n}": dict(depth=18, freeze_norm=False, in_channels=[128, 256, 512], expansion=0.5,
                                     num_layers=3, num_points=[n] * 3) for n in (1, 2, 3)},
    "rtdetrv2_r34vd": dict(depth=34, freeze_norm=False, in_channels=[128, 256, 512], expansion=0.5, num_layers=4),
    "rtdetrv2_r50vd_m": dict(depth=50, freeze_norm=True, in_channels=[512, 1024, 2048], expansion=0.5,
                             num_layers=6),
    "rtdetrv2_r50vd": dict(depth=50, freeze_norm=True, in_channels=[512, 1024, 2048], expansion=1.0, num_layers=6),
    "rtdetrv2_r101vd": dict(depth=101, freeze_norm=True, in_channels=[512, 1024, 2048], expansion=1.0,
                            num_layers=6, hidden_dim=384, dim_feedforward=2048),
}


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Any `torchvision...` import gets a MagicMock module."""

    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = mock.MagicMock(name=spec.name)
        m.__path__ = []
        m.__spec__ = spec
        m.__version__ = "0.28.0"
        return m

    def exec_module(self, module):
        pass


def build(repo, name, num_classes=80, size=(640, 640)):
    import torch.nn as nn

    from src.nn.backbone.presnet import PResNet
    from src.zoo.rtdetr.hybrid_encoder import HybridEncoder
    from src.zoo.rtdetr.rtdetrv2_decoder import RTDETRTransformerv2

    v = VARIANTS[name]
    hidden = v.get("hidden_dim", 256)
    backbone = PResNet(depth=v["depth"], variant="d", freeze_at=-1 if v["depth"] < 50 else 0, return_idx=[1, 2, 3],
                       num_stages=4, freeze_norm=v["freeze_norm"], pretrained=False)
    encoder = HybridEncoder(in_channels=v["in_channels"], feat_strides=[8, 16, 32], hidden_dim=hidden,
                            use_encoder_idx=[2], num_encoder_layers=1, nhead=8,
                            dim_feedforward=v.get("dim_feedforward", 1024), dropout=0.0, enc_act="gelu",
                            expansion=v["expansion"], depth_mult=1, act="silu")
    decoder = RTDETRTransformerv2(num_classes=num_classes, feat_channels=[hidden] * 3, feat_strides=[8, 16, 32],
                                  hidden_dim=256, num_levels=3, num_layers=v["num_layers"], num_queries=300,
                                  num_denoising=100, label_noise_ratio=0.5, box_noise_scale=1.0, eval_idx=-1,
                                  num_points=v.get("num_points", [4, 4, 4]), cross_attn_method="default", query_select_method="default",
                                  eval_spatial_size=list(size))
    model = nn.Module()
    model.backbone, model.encoder, model.decoder = backbone, encoder, decoder
    return model


def buffer_values(model) -> dict:
    """Every persistent buffer but BatchNorm's statistics (and FrozenBatchNorm's affine buffers), as nested lists (JSON writes +inf as
    Infinity, which json.loads reads back)."""
    state = model.state_dict()
    out = {}
    for name, buf in model.named_buffers():
        if name not in state or (name.rsplit(".", 1)[0] + ".running_mean" in state
                                 and not name.endswith("num_batches_tracked")):
            continue  # (frozen) BatchNorm statistics and affine: weights in all but name
        out[name] = {"dtype": str(buf.dtype).replace("torch.", ""), "shape": list(buf.shape),
                     "values": buf.tolist()}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True, help="the authors' rtdetrv2_pytorch folder")
    ap.add_argument("--out", default="tests/data")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--rev", default="", help="their commit, recorded in the files")
    ap.add_argument("--small", default="32x416", help="HEIGHTxWIDTH at which buffer values are recorded")
    args = ap.parse_args()
    sys.meta_path.insert(0, _StubFinder())
    sys.path.insert(0, str(Path(args.repo).resolve()))
    # their src/__init__ imports data/solver packages (torchvision transforms); import only the model code
    for pkg in ("src", "src.nn", "src.nn.backbone", "src.zoo", "src.zoo.rtdetr"):
        m = types.ModuleType(pkg)
        m.__path__ = [str(Path(args.repo, *pkg.split(".")))]
        sys.modules[pkg] = m
    core = types.ModuleType("src.core")  # their registry (with tensorboard, yaml configs): only `register` is used
    core.register = lambda *a, **k: (lambda cls: cls)
    sys.modules["src.core"] = core
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    small = [int(v) for v in args.small.split("x")]
    for name in args.variants:
        state = build(args.repo, name).state_dict()
        keys = {k: list(t.shape) for k, t in state.items()}
        dtypes = {k: str(t.dtype).replace("torch.", "") for k, t in state.items()}
        buffers = buffer_values(build(args.repo, name, size=small))
        path = out / f"authors_keys_{name}.json"
        path.write_text(json.dumps({"source": "lyuwenyu/RT-DETR rtdetrv2_pytorch"
                                    + (f" at {args.rev}" if args.rev else "") + ", built by benchmarks/authors_keys.py",
                                    "num_classes": 80, "eval_spatial_size": [640, 640], "keys": keys,
                                    "dtypes": dtypes, "small": {"eval_spatial_size": small, "buffers": buffers}},
                                   separators=(",", ":")))
        inf = sum(1 for b in buffers.values() if b["dtype"].startswith("float")
                  for v in _flat(b["values"]) if v in (float("inf"), float("-inf")))
        print(f"{name}: {len(keys)} tensors, {len(buffers)} buffers at {small} ({inf} infinite values) -> {path}")


def _flat(values):
    if isinstance(values, list):
        for v in values:
            yield from _flat(v)
    else:
        yield values


if __name__ == "__main__":
    main()
