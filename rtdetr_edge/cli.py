"""The `rtdetr-edge` command line (typer). Thin: parse, call one function, print.

Errors a user can cause are one line on stderr and exit code 2; no traceback.
"""

import functools
import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="RT-DETRv2 from PyTorch training to verified edge artifacts.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: generate the default synthetic COCO dataset.")
app.add_typer(data_app, name="data")
console = Console()
err = Console(stderr=True)


def user_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err.print(f"[red]error:[/red] {e}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(2)
    return wrapper


IMGSZ_HELP = "input size: 640 (square) or HEIGHTxWIDTH like 480x640; multiples of 32"


@app.command()
@user_errors
def models(imgsz: str = typer.Option("640", help=IMGSZ_HELP)):
    """List the RT-DETRv2 variants with their parameter count and GFLOPs (counted, not copied)."""
    from .model.variants import VARIANTS, parse_imgsz
    from .model.stats import model_stats

    size = parse_imgsz(imgsz)
    table = Table(title=f"RT-DETRv2 variants (80 classes, {size[0]}x{size[1]})")
    for col in ("variant", "name", "params M", "GFLOPs", "dec layers", "pub. AP"):
        table.add_column(col, justify="right" if col not in ("variant", "name") else "left", no_wrap=True)
    for name, v in VARIANTS.items():
        params, gflops = model_stats(name, size)
        layers = f"{v.dec_layers} (eval {(v.eval_idx % v.dec_layers) + 1})"
        table.add_row(name, f"RT-DETRv2-{v.alias}", f"{params / 1e6:.1f}", f"{gflops:.1f}", layers,
                      f"{v.published_ap:.1f}")
    console.print(table)
    console.print("GFLOPs = 2 x multiply-accumulates of the deploy form (RepVGG fused), counted with "
                  "torch.utils.flop_counter; published AP is the authors' COCO val2017 number at 640.")


@app.command()
@user_errors
def init(variant: str = typer.Option("rtdetrv2_r18vd", help="model variant (see `rtdetr-edge models`)"),
         out: Path = typer.Option(..., help="checkpoint file to write"),
         num_classes: int = typer.Option(80, help="number of classes"),
         imgsz: str = typer.Option("640", help=IMGSZ_HELP),
         seed: int = typer.Option(0, help="random seed")):
    """Write an untrained (randomly initialised) checkpoint: for pipeline and export checks, not for detection."""
    import torch

    from .model.checkpoint import save_checkpoint
    from .model.rtdetr import build_model

    torch.manual_seed(seed)
    model = build_model(variant, num_classes=num_classes, imgsz=imgsz)
    save_checkpoint(model, out, untrained=True)
    console.print(f"wrote {out} ({variant}, {num_classes} classes, untrained)")


@app.command()
@user_errors
def predict(weights: Path = typer.Option(..., help="checkpoint (ours or the authors')"),
            source: Path = typer.Option(..., help="an image or a folder of images"),
            imgsz: Optional[str] = typer.Option(None, help=IMGSZ_HELP + " (default: the checkpoint's)"),
            conf: float = typer.Option(0.5, help="score threshold"),
            save: Optional[Path] = typer.Option(None, help="folder for images with the detections drawn"),
            sampling: str = typer.Option("grid_sample", help="deformable sampling: grid_sample, gather, discrete")):
    """Detect objects in images and print them; optionally save drawn images."""
    from .model.variants import parse_imgsz
    from .predict import predict as run_predict

    size = parse_imgsz(imgsz) if imgsz else None
    for path, det, names in run_predict(weights, source, size, conf, save, sampling):
        console.print(f"{path}: {len(det)} detections (score >= {conf})", soft_wrap=True, highlight=False)
        table = Table()
        for col in ("class", "score", "x0", "y0", "x1", "y1"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for label, box, score in zip(det.labels, det.boxes, det.scores):
            table.add_row(names[int(label)], f"{score:.3f}", *(f"{v:.1f}" for v in box))
        if len(det):
            console.print(table)
    if save is not None:
        console.print(f"drawn images saved in {save}")


@app.command()
@user_errors
def train(data: Optional[Path] = typer.Option(None, help="COCO folder: annotations/instances_{train,val}*.json + "
                                                          "{train,val}*/ images"),
          model: str = typer.Option("rtdetrv2_r18vd", help="variant (see `rtdetr-edge models`)"),
          weights: Optional[Path] = typer.Option(None, help="start from this checkpoint (ours or the authors')"),
          epochs: int = typer.Option(72, help="epochs"),
          batch: int = typer.Option(8, help="images per batch (per process under torchrun)"),
          imgsz: str = typer.Option("640", help=IMGSZ_HELP),
          out: Path = typer.Option(Path("runs/train"), help="run folder (last.pt, best.pt, metrics.csv/png)"),
          resume: bool = typer.Option(False, help="continue exactly from OUT/last.pt"),
          lr: float = typer.Option(1e-4, help="AdamW learning rate"),
          warmup_iters: int = typer.Option(2000, help="linear warm-up iterations"),
          ema_warmups: int = typer.Option(2000, help="EMA decay warm-up (updates)"),
          workers: int = typer.Option(2, help="data loader worker processes"),
          stop_epoch: Optional[int] = typer.Option(None, help="strong augmentations off from this epoch "
                                                              "(default: the last epoch, as released)"),
          no_strong_aug: bool = typer.Option(False, "--no-strong-aug", help="flip + resize only"),
          multi_scale: bool = typer.Option(False, help="random batch sizes 0.75x..1.25x until stop_epoch"),
          time_limit: Optional[float] = typer.Option(None, help="stop after this many minutes (evaluates first)"),
          seed: int = typer.Option(0, help="random seed"),
          skip_bad: bool = typer.Option(False, help="skip missing/unreadable images with a warning"),
          sync_bn: bool = typer.Option(False, help="synchronised BatchNorm under torchrun"),
          train_json: Optional[Path] = typer.Option(None, help="explicit training annotation file"),
          val_json: Optional[Path] = typer.Option(None, help="explicit validation annotation file"),
          images: Optional[Path] = typer.Option(None, help="image folder for --train-json/--val-json")):
    """Train (or fine-tune) on a COCO-format dataset; runs data-parallel under torchrun."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .train.trainer import TrainConfig, Trainer

    cfg = TrainConfig(data=str(data) if data else None, model=model, weights=str(weights) if weights else None,
                      epochs=epochs, batch=batch, imgsz=imgsz, out=str(out), resume=resume, lr=lr,
                      warmup_iters=warmup_iters, ema_warmups=ema_warmups, workers=workers, stop_epoch=stop_epoch,
                      strong_aug=not no_strong_aug, multi_scale=multi_scale, time_limit_min=time_limit, seed=seed,
                      skip_bad=skip_bad, sync_bn=sync_bn, train_json=str(train_json) if train_json else None,
                      val_json=str(val_json) if val_json else None, train_images=str(images) if images else None,
                      val_images=str(images) if images else None)
    trainer = Trainer(cfg)
    if trainer.epoch >= cfg.epochs:
        raise UserError(f"{out}/last.pt already finished {trainer.epoch} epochs; raise --epochs to train more")
    quiet = trainer.rank != 0
    columns = [TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[losses]}"), TextColumn("{task.fields[speed]}"), TimeElapsedColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=err, disable=quiet) as progress:
        task = progress.add_task("train", total=None, epoch=trainer.epoch + 1, losses="", speed="")

        def on_step(i, n, losses, speed):
            text = " ".join(f"{k[5:] or 'loss'} {v:.3f}" for k, v in losses.items() if k.startswith("loss"))
            progress.update(task, completed=i, total=n, epoch=f"{trainer.epoch + 1}/{cfg.epochs}", losses=text,
                            speed=f"{speed:.1f} img/s")

        def on_epoch(row, metrics):
            progress.console.print(
                f"epoch {row['epoch']}/{cfg.epochs}: loss {row['train_loss']:.3f}, {row['train_images_per_s']:.2f} "
                f"img/s, AP {metrics['AP']:.3f} AP50 {metrics['AP50']:.3f} AP75 {metrics['AP75']:.3f} "
                f"({row['minutes']:.1f} min)", highlight=False)
            progress.reset(task, total=None)

        trainer.fit(on_step, on_epoch)
    if not quiet:
        console.print(f"run folder {out}: last.pt, best.pt (AP {trainer.best_ap:.3f}), metrics.csv, metrics.png")


@app.command("eval")
@user_errors
def eval_cmd(weights: Path = typer.Option(..., help="checkpoint"),
             data: Optional[Path] = typer.Option(None, help="COCO folder (its val split is used)"),
             val_json: Optional[Path] = typer.Option(None, help="explicit annotation file"),
             images: Optional[Path] = typer.Option(None, help="image folder for --val-json"),
             imgsz: Optional[str] = typer.Option(None, help=IMGSZ_HELP + " (default: the checkpoint's)"),
             batch: int = typer.Option(8, help="images per batch"),
             sampling: str = typer.Option("grid_sample", help="deformable sampling: grid_sample, gather, discrete"),
             json_out: Optional[Path] = typer.Option(None, "--json", help="write the metrics here (JSON)"),
             skip_bad: bool = typer.Option(False, help="skip missing/unreadable images with a warning")):
    """COCO mAP (AP, AP50, AP75, small/medium/large, per class) of a checkpoint on a validation set."""
    import json

    from rich.progress import Progress

    from .data.coco import CocoDetection, resolve_coco_dir
    from .data.transforms import eval_transforms
    from .model.checkpoint import load_model
    from .train.evaluate import METRICS, evaluate

    if val_json:
        if not images:
            raise UserError("--val-json needs --images")
        ann, img_dir = val_json, images
    elif data:
        ann, img_dir = resolve_coco_dir(data, "val")
    else:
        raise UserError("give --data DIR or --val-json FILE --images DIR")
    model = load_model(weights, imgsz=imgsz, sampling=sampling)
    dataset = CocoDetection(ann, img_dir, transforms=eval_transforms(model.imgsz), skip_bad=skip_bad)
    err.print(dataset.report(), highlight=False)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(dataset))
        metrics = evaluate(model, dataset, batch_size=batch, progress=lambda n: progress.advance(task, n))
    table = Table(title=f"COCO bbox metrics — {weights} on {ann}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for m in METRICS:
        table.add_row(m, f"{metrics[m]:.4f}")
    for name, ap in metrics["per_class"].items():
        table.add_row(f"AP {escape(name)}", f"{ap:.4f}")
    console.print(table)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_out.with_name(f".{json_out.name}.tmp")
        tmp.write_text(json.dumps({"weights": str(weights), "annotations": str(ann), "imgsz": list(model.imgsz),
                                   **metrics}, indent=2))
        tmp.replace(json_out)
        console.print(f"metrics written to {json_out}")


@data_app.command("synth")
@user_errors
def data_synth(out: Path = typer.Argument(..., help="folder to create (must not exist or be empty)"),
               train: int = typer.Option(400, help="training images"),
               val: int = typer.Option(100, help="validation images"),
               imgsz: int = typer.Option(320, help="image side in pixels"),
               seed: int = typer.Option(0, help="seed; the same seed gives the same dataset")):
    """Generate the default dataset: COCO-format shapes on cluttered backgrounds (nothing downloaded)."""
    from rich.progress import Progress

    from .data.synth import CLASSES, generate

    if train < 0 or val < 0 or imgsz < 32:
        raise UserError("--train/--val must be >= 0 and --imgsz >= 32")
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("generating images", total=train + val)
        generate(out, train, val, imgsz, seed, progress=lambda: progress.advance(task))
    console.print(f"wrote {out}: {train} train + {val} val images of {imgsz}px, classes: {', '.join(CLASSES)}")


def main():
    app()


if __name__ == "__main__":
    main()
