"""A checkpoint written by the authors' own code goes through the user's first steps: load, predict, export.

Their r18vd model (lyuwenyu/RT-DETR, rtdetrv2_pytorch; torchvision stubbed as in benchmarks/authors_keys.py)
is built with their initialisation at --imgsz, saved exactly as their solver saves it ({'ema': {'module':
state_dict}} with every buffer: anchors with their +inf, valid_mask, num_points_scale, BatchNorm counters),
then read by rtdetr-edge as a user would. Printed: the largest difference between their model's outputs
and ours on the same input (eval mode), and whether predict and export (ONNX) ran.

    python benchmarks/authors_checkpoint.py --repo /path/to/RT-DETR/rtdetrv2_pytorch [--imgsz 640]
        [--points 1|2|3|4] [--discrete]    # their sp1-sp3 checkpoints; their _dsp ones
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True, help="the authors' rtdetrv2_pytorch folder")
    ap.add_argument("--imgsz", type=int, default=640, help="640: their anchors hold +inf outside the border")
    ap.add_argument("--points", type=int, default=4, choices=[1, 2, 3, 4],
                    help="sampling points per level: 4 as rtdetrv2_r18vd, 1-3 as their sp1-sp3 checkpoints")
    ap.add_argument("--discrete", action="store_true",
                    help="their discrete sampling (the _dsp checkpoints), read by ours with sampling='discrete'")
    ap.add_argument("--seed", type=int, default=0, help="of the perturbation of their initial weights")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from authors_ort import authors_model

    from rtdetr_edge import load_model
    from rtdetr_edge.export import export

    torch.manual_seed(0)
    theirs = authors_model(args.repo, 80, args.imgsz, num_points=args.points,
                           cross_attn_method="discrete" if args.discrete else "default").eval()
    # their initialisation leaves the encoder's class scores tied (a constant bias, tiny weights): top-k
    # would pick among ties by rounding. Perturbed as a trained model's weights are, the queries are distinct.
    g = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    state = theirs.state_dict()
    inf = int(torch.isinf(state["decoder.anchors"]).sum())
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "rtdetrv2_r18vd_theirs.pth"
    torch.save({"ema": {"module": state, "updates": 0}, "last_epoch": -1}, path)
    ours = load_model(path, imgsz=args.imgsz, sampling="discrete" if args.discrete else "grid_sample")
    x = torch.rand(2, 3, args.imgsz, args.imgsz, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = theirs(x), ours(x)
    d_logits = float((a["pred_logits"] - b["pred_logits"]).abs().max())
    d_boxes = float((a["pred_boxes"] - b["pred_boxes"]).abs().max())
    print(f"their checkpoint: {len(state)} tensors, decoder.anchors with {inf} infinite values; loaded as "
          f"{ours.variant}, {ours.num_classes} classes")
    print(f"outputs, theirs vs ours ({args.imgsz}x{args.imgsz}, eval): logits max |diff| {d_logits:.2e}, "
          f"boxes {d_boxes:.2e}")
    import cv2

    image = tmp / "img.jpg"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8))
    from rtdetr_edge.predict import predict

    (_, det, _), = list(predict(path, image, imgsz=(args.imgsz, args.imgsz), conf=0.0))
    print(f"predict: {len(det)} detections")
    bundle = export(path, "onnx", imgsz=args.imgsz, out=tmp / "bundle")
    print(f"export: {bundle} ({sorted(p.name for p in bundle.iterdir())})")


if __name__ == "__main__":
    main()
