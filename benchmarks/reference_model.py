"""Make the shipped reference model (`--weights shapes`) from a training run, and measure what it costs
to store it in half precision. Not part of CI.

The run (one command, its seed and settings; ~100 minutes on 2 CPU cores):

    rtdetr-edge data synth runs/shapes/data --train 800 --val 100 --imgsz 320 --seed 0
    rtdetr-edge train --data runs/shapes/data --model rtdetrv2_r18vd --epochs 12 --batch 4 --imgsz 320 \\
        --lr 2e-4 --warmup-iters 100 --ema-warmups 2000 --workers 1 --no-strong-aug --seed 0 \\
        --time-limit 135 --out runs/shapes/train

Then:

    python benchmarks/reference_model.py --run runs/shapes/train --data runs/shapes/data

evaluates the run's best.pt (EMA weights) in FP32 and as the half-precision file on the validation set,
refuses to ship if the half-precision AP is more than 0.005 below FP32, and writes
rtdetr_edge/weights/shapes_r18vd_320.{pt,json}.
"""

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from rtdetr_edge.data.coco import CocoDetection, resolve_coco_dir
from rtdetr_edge.data.transforms import eval_transforms
from rtdetr_edge.model.checkpoint import load_model, read_checkpoint
from rtdetr_edge.train.evaluate import METRICS, evaluate
from rtdetr_edge.zoo import SHIPPED, WEIGHTS_DIR

COMMAND = ("rtdetr-edge data synth runs/shapes/data --train 800 --val 100 --imgsz 320 --seed 0 && "
           "rtdetr-edge train --data runs/shapes/data --model rtdetrv2_r18vd --epochs 12 --batch 4 --imgsz 320 "
           "--lr 2e-4 --warmup-iters 100 --ema-warmups 2000 --workers 1 --no-strong-aug --seed 0 --time-limit 135 "
           "--out runs/shapes/train")


def write_shipped(checkpoint, name: str, card_fields: dict) -> Path:
    """Store a checkpoint's weights (the EMA weights of a training checkpoint) as a shipped half-precision
    file with its card. Used once per release of a reference model."""
    from rtdetr_edge.fsutil import atomic_path, atomic_write_text
    from rtdetr_edge.model.checkpoint import META_KEY

    model = load_model(checkpoint)
    state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu()
             for k, v in model.state_dict().items()}
    stem = SHIPPED[name]
    target = WEIGHTS_DIR / f"{stem}.pt"
    with atomic_path(target) as tmp:
        torch.save({"model": state, META_KEY: {**model.meta(), "shipped": name, "stored_as": "float16"}}, tmp)
    atomic_write_text(WEIGHTS_DIR / f"{stem}.json", json.dumps({"name": name, **model.meta(), **card_fields},
                                                              indent=2))
    return target


def ap_of(weights, data):
    model = load_model(weights)
    ann, images = resolve_coco_dir(data, "val")
    return evaluate(model, CocoDetection(ann, images, transforms=eval_transforms(model.imgsz)), batch_size=8)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/shapes/train")
    ap.add_argument("--data", default="runs/shapes/data")
    ap.add_argument("--checkpoint", default="best.pt")
    args = ap.parse_args()
    run = Path(args.run)
    ckpt = run / args.checkpoint
    _, _, raw = read_checkpoint(ckpt)
    history = raw.get("history", [])
    t = time.time()
    fp32 = ap_of(ckpt, args.data)
    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(f"fp32 {ckpt}: " + ", ".join(f"{m} {fp32[m]:.4f}" for m in METRICS) + f" ({time.time() - t:.0f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        # measure the half-precision file before it replaces anything in the package
        import rtdetr_edge.zoo as zoo
        zoo.WEIGHTS_DIR = Path(tmp)
        half = write_shipped(ckpt, "shapes", {})
        fp16 = ap_of(half, args.data)
        zoo.WEIGHTS_DIR = WEIGHTS_DIR
        size = half.stat().st_size
    print("fp16 file: " + ", ".join(f"{m} {fp16[m]:.4f}" for m in METRICS) + f", {size / 1e6:.1f} MB")
    drop = fp32["AP"] - fp16["AP"]
    if drop > 0.005:
        raise SystemExit(f"half precision costs {drop:.4f} AP (> 0.005): not shipped")
    best = max(history, key=lambda r: r["AP"]) if history else {}
    card = {
        "dataset": "generated shapes, 800 train / 100 val images at 320 px, seed 0 (rtdetr-edge data synth)",
        "command": COMMAND,
        "metrics": {m: round(fp16[m], 4) for m in METRICS},
        "metrics_fp32": {m: round(fp32[m], 4) for m in METRICS},
        "per_class_AP": {k: round(v, 4) for k, v in fp16["per_class"].items()},
        "trained": {"epochs": best.get("epoch"), "iterations": best.get("iteration"),
                    "minutes": round(best.get("minutes", 0.0), 1), "images_per_s": round(
                        sum(r["train_images_per_s"] for r in history) / max(len(history), 1), 2),
                    "cpu": platform.processor() or platform.machine()},
        "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                     if k in ("epoch", "minutes", "AP", "AP50", "AP75", "train_loss")} for r in history],
    }
    out = write_shipped(ckpt, "shapes", card)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {out.with_suffix('.json')}; AP {fp16['AP']:.4f} "
          f"AP50 {fp16['AP50']:.4f} (fp32 {fp32['AP']:.4f} / {fp32['AP50']:.4f})")
    print(json.dumps(card["metrics"]))


if __name__ == "__main__":
    main()
