"""Training-step speed on this CPU, like for like: our rtdetrv2_r18vd against HuggingFace transformers'
RTDetrV2ForObjectDetection (an independent implementation of the same model, with its own matcher and
loss) built with the same hyper-parameters. Same generated batches, 320 px, denoising on, AdamW step and
gradient clipping included; the two are timed round-robin so that machine noise hits both alike.

    python benchmarks/train_step_hf.py --batch 4 8 --steps 5

Needs the test extra (transformers). Not part of CI.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--data", default="runs/bench_step_data")
    args = ap.parse_args()

    from hf_reference import hf_model_for

    from rtdetr_edge.data.coco import CocoDetection
    from rtdetr_edge.data.synth import generate
    from rtdetr_edge.data.transforms import train_transforms
    from rtdetr_edge.model.rtdetr import build_model
    from rtdetr_edge.train.criterion import RTDETRCriterion
    from rtdetr_edge.train.evaluate import collate

    data = Path(args.data)
    if not data.exists():
        generate(data, max(args.batch) * 2, 2, args.imgsz, seed=0)
    ds = CocoDetection(data / "annotations" / "instances_train.json", data / "train")
    tf = train_transforms((args.imgsz, args.imgsz), stop_epoch=1, strong=False)
    samples = [tf(*ds.load(i), np.random.default_rng(i)) for i in range(len(ds))]

    torch.manual_seed(0)
    ours = build_model("rtdetrv2_r18vd", num_classes=ds.num_classes, imgsz=args.imgsz).train()
    hf = hf_model_for(ours, freeze_backbone_batch_norms=False).train()  # trainable BN, as ours from scratch
    crit = RTDETRCriterion(ours.num_classes)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-5)
    opt_hf = torch.optim.AdamW(hf.parameters(), lr=1e-5)

    def train_step(model, opt, loss):
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        opt.step()

    def step_ours(images, targets):
        train_step(ours, opt_ours, sum(crit(ours(images, targets), targets).values()))

    def step_hf(images, targets):
        labels = [{"class_labels": t["labels"], "boxes": t["boxes"]} for t in targets]
        train_step(hf, opt_hf, hf(pixel_values=images, labels=labels).loss)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.imgsz} px")
    print(f"{'batch':>5} {'ours img/s':>11} {'HF img/s':>9} {'ratio':>6}")
    for b in args.batch:
        images, targets = collate(samples[:b])
        times = {"ours": [], "hf": []}
        for i in range(args.steps + 1):
            for name, fn in (("ours", step_ours), ("hf", step_hf)) if i % 2 == 0 else (("hf", step_hf),
                                                                                       ("ours", step_ours)):
                t = time.perf_counter()
                fn(images, targets)
                if i:  # the first round warms up
                    times[name].append(time.perf_counter() - t)
        o, h = (b / statistics.median(times[k]) for k in ("ours", "hf"))
        print(f"{b:>5} {o:>11.2f} {h:>9.2f} {o / h:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
