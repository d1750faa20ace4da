"""FP32 fine-tuning with QAT's schedule (lr 1e-5, backbone 0.1x, EMA 0.999 with 200 warm-up updates, batch 4,
no strong augmentation): the fair baseline for a QAT run's AP, since fine-tuning on the same data raises
AP whatever the precision when the starting model was still improving.

    python benchmarks/fp32_finetune_like_qat.py --weights shapes --data runs/shapes/data --epochs 2 --out runs/fp32ft
"""

import argparse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="shapes")
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--out", default="runs/fp32ft")
    args = ap.parse_args()

    from rtdetr_edge.train.trainer import TrainConfig, Trainer
    from rtdetr_edge.zoo import resolve_weights

    cfg = TrainConfig(data=args.data, weights=str(resolve_weights(args.weights)), epochs=args.epochs, batch=4,
                      imgsz=(args.imgsz, args.imgsz), out=args.out, lr=1e-5, warmup_iters=50, ema_decay=0.999,
                      ema_warmups=200, workers=1, strong_aug=False, seed=0)
    for row in Trainer(cfg).fit():
        print(f"epoch {row['epoch']}: {row['minutes']:.1f} min, AP {row['AP']:.4f}, AP50 {row['AP50']:.4f}", flush=True)


if __name__ == "__main__":
    main()
