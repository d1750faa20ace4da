"""Train rtdetrv2_r18vd from scratch on the default generated dataset at 320 px for a fixed CPU budget;
print images/s and the AP curve (not part of CI).

    python benchmarks/train_synth.py --minutes 60 --out runs/bench_train
    python benchmarks/train_synth.py --minutes 45 --out runs/bench_train --resume   # go on, same curve

Reference (measured in an earlier round): the authors' own training code on a comparable generated shapes set, 320 px,
batch 8, AdamW 1e-4, flip only, ran at 3.0 img/s and reached AP 0.29 / AP50 0.42 after 15 min and
AP 0.49 / AP50 0.67 after 25 min -- measured on an AVX512-BF16 machine; compare ratios only when both
ran on the same CPU.
"""

import argparse
import logging
import platform
import time
from pathlib import Path

import torch

from rtdetr_edge.data.synth import generate
from rtdetr_edge.train.trainer import TrainConfig, Trainer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--out", default="runs/bench_train")
    ap.add_argument("--train", type=int, default=800)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--ema-warmups", type=int, default=2000, help="EMA warm-up iterations (released: 2000)")
    ap.add_argument("--strong-aug", action="store_true", help="the released augmentations (default: flip only)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--resume", action="store_true", help="go on with the run in --out for --minutes more")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    data = out / "data"
    if not data.exists():
        t = time.time()
        generate(data, args.train, args.val, args.imgsz, seed=0)
        print(f"generated {args.train}+{args.val} images in {time.time() - t:.0f} s")
    cfg = TrainConfig(data=str(data), epochs=1000, batch=args.batch, imgsz=args.imgsz, out=str(out / "run"),
                      lr=args.lr, warmup_iters=args.warmup, ema_warmups=args.ema_warmups, workers=args.workers,
                      strong_aug=args.strong_aug, time_limit_min=args.minutes, resume=args.resume)
    trainer = Trainer(cfg)
    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'epoch':>5} {'min':>6} {'img/s':>6} {'loss':>7} {'AP':>6} {'AP50':>6} {'AP75':>6}")

    def on_epoch(row, metrics):
        print(f"{row['epoch']:>5} {row['minutes']:>6.1f} {row['train_images_per_s']:>6.2f} {row['train_loss']:>7.3f} "
              f"{metrics['AP']:>6.3f} {metrics['AP50']:>6.3f} {metrics['AP75']:>6.3f}", flush=True)

    trainer.fit(on_epoch=on_epoch)
    rows = trainer.history
    speed = sum(r["train_images_per_s"] for r in rows) / len(rows)
    best = max(rows, key=lambda r: r["AP"])
    print(f"mean {speed:.2f} img/s (reference 3.0 img/s on another CPU: ratio {speed / 3.0:.2f}); "
          f"best AP {best['AP']:.3f} AP50 {best['AP50']:.3f} at {best['minutes']:.1f} min; "
          f"targets AP >= 0.50 and AP50 >= 0.80 within 60 min")
    print(f"curve: {out / 'run' / 'metrics.csv'} and metrics.png")


if __name__ == "__main__":
    main()
