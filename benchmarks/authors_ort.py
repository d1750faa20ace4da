"""Our FP32 ONNX against the authors' own export, on onnxruntime, same weights, round-robin in one process;
then onnxruntime's profiler on both, summed per operator type, to show where the time goes.

The authors' model is built from their repository (lyuwenyu/RT-DETR, rtdetrv2_pytorch; torchvision stubbed
as in benchmarks/authors_keys.py), given our checkpoint's weights (same key layout), converted to deploy
form their way and exported their way (tools/export_onnx.py: torch.onnx opset 16, dynamic batch, not
simplified). Their post-processor uses torchvision's box_convert; ours (the same math) stands in.

    python benchmarks/authors_ort.py --repo /path/to/RT-DETR/rtdetrv2_pytorch [--weights W] [--imgsz 640]
"""

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np


def authors_model(repo, num_classes, imgsz, num_points=4, cross_attn_method="default"):
    sys.path.insert(0, str(Path(__file__).parent))
    from authors_keys import VARIANTS, _StubFinder

    sys.meta_path.insert(0, _StubFinder())
    sys.path.insert(0, str(Path(repo).resolve()))
    for pkg in ("src", "src.nn", "src.nn.backbone", "src.zoo", "src.zoo.rtdetr"):
        m = types.ModuleType(pkg)
        m.__path__ = [str(Path(repo, *pkg.split(".")))]
        sys.modules[pkg] = m
    core = types.ModuleType("src.core")
    core.register = lambda *a, **k: (lambda cls: cls)
    sys.modules["src.core"] = core
    import torch.nn as nn

    from src.nn.backbone.presnet import PResNet
    from src.zoo.rtdetr.hybrid_encoder import HybridEncoder
    from src.zoo.rtdetr.rtdetrv2_decoder import RTDETRTransformerv2

    v = VARIANTS["rtdetrv2_r18vd"]

    class RTDETR(nn.Module):  # their src/zoo/rtdetr/rtdetr.py, eval path
        def __init__(self):
            super().__init__()
            self.backbone = PResNet(depth=18, variant="d", freeze_at=-1, return_idx=[1, 2, 3], num_stages=4,
                                    freeze_norm=False, pretrained=False)
            self.encoder = HybridEncoder(in_channels=v["in_channels"], feat_strides=[8, 16, 32], hidden_dim=256,
                                         use_encoder_idx=[2], num_encoder_layers=1, nhead=8, dim_feedforward=1024,
                                         dropout=0.0, enc_act="gelu", expansion=v["expansion"], depth_mult=1,
                                         act="silu", eval_spatial_size=[imgsz, imgsz])
            self.decoder = RTDETRTransformerv2(num_classes=num_classes, feat_channels=[256] * 3,
                                               feat_strides=[8, 16, 32], hidden_dim=256, num_levels=3,
                                               num_layers=v["num_layers"], num_queries=300, num_denoising=100,
                                               label_noise_ratio=0.5, box_noise_scale=1.0, eval_idx=-1,
                                               num_points=[num_points] * 3, cross_attn_method=cross_attn_method,
                                               query_select_method="default", eval_spatial_size=[imgsz, imgsz])

        def forward(self, x):
            return self.decoder(self.encoder(self.backbone(x)))

        def deploy(self):
            self.eval()
            for m in self.modules():
                if hasattr(m, "convert_to_deploy"):
                    m.convert_to_deploy()
            return self

    return RTDETR()


def export_authors_onnx(repo, state, imgsz, path, dynamic=True) -> Path:
    """The authors' model with `state` (our key layout, float), deploy form, exported their way (torch.onnx,
    opset 16, constant folding; dynamic batch as their tools/export_onnx.py when `dynamic`), with our
    post-processor (the same math as theirs) on top."""
    import torch

    from rtdetr_edge.model.postprocess import PostProcessor

    num_classes = state["decoder.dec_score_head.0.weight"].shape[0]
    theirs = authors_model(repo, num_classes, imgsz)
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    assert not [k for k in missing if "anchors" not in k and "valid_mask" not in k], missing
    theirs.deploy()

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.postprocessor = theirs, PostProcessor(num_classes, 300)

        def forward(self, images, orig_target_sizes):
            return self.postprocessor(self.model(images), orig_target_sizes)

    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    size = torch.tensor([[imgsz, imgsz]])
    wrapper = Theirs().eval()
    with torch.no_grad():
        wrapper(x, size)
        torch.onnx.export(wrapper, (x, size), str(path), input_names=["images", "orig_target_sizes"],
                          output_names=["labels", "boxes", "scores"],
                          dynamic_axes={"images": {0: "N"}, "orig_target_sizes": {0: "N"}} if dynamic else None,
                          opset_version=16, do_constant_folding=True, dynamo=False)
    return Path(path)


def sessions(paths, threads):
    import onnxruntime as ort

    out = {}
    for name, path in paths.items():
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        out[name] = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    return out


def profile(path, feeds, threads, runs=5):
    """onnxruntime's profiler: milliseconds per operator type, averaged over `runs`."""
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.enable_profiling = True
    o.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "prof")
    s = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    s.run(None, feeds)
    for _ in range(runs):
        s.run(None, feeds)
    events = json.loads(Path(s.end_profiling()).read_text())
    per_op = collections.Counter()
    nodes = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"] / 1000 / (runs + 1)
            nodes[e["args"]["op_name"]] += 1 / (runs + 1)
    return per_op, nodes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True, help="the authors' rtdetrv2_pytorch folder")
    ap.add_argument("--weights", default=None, help="our checkpoint (default: randomized r18vd, 80 classes)")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ours", nargs="*", default=[], help="extra ONNX files of ours to time beside them")
    args = ap.parse_args()

    import onnx
    import torch

    from rtdetr_edge import build_model, save_checkpoint
    from rtdetr_edge.export import export
    from rtdetr_edge.sysinfo import cpu_info

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp())
    weights = args.weights
    if weights is None:
        sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
        from hf_reference import randomize_

        torch.manual_seed(0)
        model = randomize_(build_model("rtdetrv2_r18vd", num_classes=80, imgsz=args.imgsz))
        weights = tmp / "w.pt"
        save_checkpoint(model, weights)
    state = torch.load(weights, map_location="cpu", weights_only=True)["model"]
    state = {k: v.float() for k, v in state.items()}
    x = torch.rand(1, 3, args.imgsz, args.imgsz, generator=torch.Generator().manual_seed(0))
    size = torch.tensor([[args.imgsz, args.imgsz]])
    their_path = export_authors_onnx(args.repo, state, args.imgsz, tmp / "theirs.onnx", dynamic=True)
    ours_path = export(weights, "onnx", imgsz=args.imgsz, out=tmp / "ours") / "model.onnx"
    plain_path = export(weights, "onnx", imgsz=args.imgsz, simplifier="none", out=tmp / "plain") / "model.onnx"
    paths = {"authors' export (opset 16, dynamic, their code)": their_path, "rtdetr-edge export": ours_path,
             "rtdetr-edge export --simplifier none": plain_path}
    for p in args.ours:
        paths[Path(p).name] = Path(p)
    feeds = {"images": x.numpy(), "orig_target_sizes": size.numpy()}
    sess = sessions(paths, args.threads)
    outs = {k: s.run(None, feeds) for k, s in sess.items()}
    ref = outs["rtdetr-edge export"]
    print("CPU:", cpu_info(), " threads", args.threads)
    for name, o in outs.items():
        print(f"{name}: {len(onnx.load(str(paths[name])).graph.node)} nodes; top-10 score max diff vs ours "
              f"{float(np.abs(np.sort(o[2][0])[-10:] - np.sort(ref[2][0])[-10:]).max()):.2e}")
    times = {k: [] for k in sess}
    for _ in range(2):
        for s in sess.values():
            s.run(None, feeds)
    for _ in range(args.runs):
        for k, s in sess.items():
            t0 = time.perf_counter()
            s.run(None, feeds)
            times[k].append((time.perf_counter() - t0) * 1e3)
    base = statistics.median(times["authors' export (opset 16, dynamic, their code)"])
    for k, t in times.items():
        print(f"{k:55s} median {statistics.median(t):7.1f} ms  best {min(t):7.1f} ms  "
              f"({base / statistics.median(t):.2f}x of the authors' speed)")
    profiles = {k: profile(p, feeds, args.threads) for k, p in paths.items()}
    ops = sorted(set().union(*(p[0] for p in profiles.values())),
                 key=lambda op: -max(p[0].get(op, 0) for p in profiles.values()))
    print("\nonnxruntime profile, ms per run by operator type (nodes after ORT's fusions):")
    print(f"{'op':28s}" + "".join(f"{k[:24]:>26s}" for k in profiles))
    for op in ops[:25]:
        print(f"{op:28s}" + "".join(f"{p[0].get(op, 0):17.1f} ({p[1].get(op, 0):4.0f}) " for p in profiles.values()))


if __name__ == "__main__":
    main()
