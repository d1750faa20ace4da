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
# tables keep their columns when printed to a file or a pipe (rich would assume 80 columns)
console = Console(width=None if sys.stdout.isatty() else 180)
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
def predict(source: Path = typer.Option(..., help="an image or a folder of images"),
            weights: Optional[Path] = typer.Option(None, help="PyTorch checkpoint (ours or the authors')"),
            model: Optional[Path] = typer.Option(None, help="exported bundle folder or model file "
                                                            "(.onnx, .xml, .tflite, .engine)"),
            imgsz: Optional[str] = typer.Option(None, help=IMGSZ_HELP + " (checkpoints only; default: theirs)"),
            conf: float = typer.Option(0.5, help="score threshold"),
            save: Optional[Path] = typer.Option(None, help="folder for images with the detections drawn"),
            sampling: str = typer.Option("grid_sample", help="deformable sampling for checkpoints: grid_sample, "
                                                             "gather, discrete")):
    """Detect objects in images with a checkpoint or any exported model, print them, optionally draw them."""
    from .model.variants import parse_imgsz
    from .predict import predict as run_predict

    if (weights is None) == (model is None):
        raise UserError("give exactly one of --weights (checkpoint) or --model (bundle or exported file)")
    size = parse_imgsz(imgsz) if imgsz else None
    for path, det, names in run_predict(weights or model, source, size, conf, save, sampling,
                                        exported=model is not None):
        console.print(f"{path}: {len(det)} detections (score >= {conf})", soft_wrap=True, highlight=False)
        table = Table()
        for col in ("class", "score", "x0", "y0", "x1", "y1"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for label, box, score in zip(det.labels, det.boxes, det.scores):
            name = names[int(label)] if int(label) < len(names) else str(int(label))
            table.add_row(escape(name), f"{score:.3f}", *(f"{v:.1f}" for v in box))
        if len(det):
            console.print(table)
    if save is not None:
        console.print(f"drawn images saved in {save}")


@app.command()
@user_errors
def export(weights: Path = typer.Option(..., help="checkpoint (ours or the authors')"),
           format: str = typer.Option("onnx", "--format", help="onnx, openvino or tflite"),
           precision: str = typer.Option("fp32", help="fp32 or fp16"),
           imgsz: Optional[str] = typer.Option(None, help=IMGSZ_HELP + " (default: the checkpoint's)"),
           batch: int = typer.Option(1, help="fixed batch size"),
           dynamic_batch: bool = typer.Option(False, help="any batch size (ONNX/OpenVINO)"),
           sampling: Optional[str] = typer.Option(None, help="grid_sample, gather or discrete (default: grid_sample; "
                                                             "gather for TFLite)"),
           out: Optional[Path] = typer.Option(None, help="bundle folder to create (default: exports/NAME)"),
           force: bool = typer.Option(False, help="replace an existing bundle folder")):
    """Export a checkpoint to a bundle: artifact + manifest.json + golden data for re-verification."""
    import json

    from rich.status import Status

    from .export import export as run_export

    with Status(f"exporting {format} {precision}", console=err):
        path = run_export(weights, format, precision, imgsz, batch, dynamic_batch, sampling, out, force)
    manifest = json.loads((path / "manifest.json").read_text())
    console.print(f"bundle {path}: {manifest['artifact']} ({manifest['format']} {manifest['precision']}, "
                  f"{manifest['sampling']}, {manifest['input']['imgsz'][0]}x{manifest['input']['imgsz'][1]}, "
                  f"batch {manifest['input']['batch']}), manifest.json, golden.npz", highlight=False, soft_wrap=True)


def _print_parity(result, paths):
    from .parity import COLUMNS, _fmt, _name

    cols = [c for c in COLUMNS if any(c[0] in a["metrics"] for a in result["artifacts"])]
    table = Table(title="parity vs " + (str(result["weights"]) if result["weights"] else "stored golden outputs"))
    table.add_column("artifact", no_wrap=True)
    for _, title, _ in cols:
        table.add_column(title, justify="right")
    table.add_column("result")
    for a in result["artifacts"]:
        table.add_row(_name(a), *(_fmt(a["metrics"], k, f) for k, _, f in cols),
                      "[green]pass[/green]" if a["ok"] else "[red]FAIL[/red] " + escape("; ".join(a["broken"])))
    console.print(table)
    console.print(f"report: {paths['json']}, {paths['md']}, {paths['png']}", highlight=False, soft_wrap=True)


def _parse_tolerances(items):
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        if not value:
            raise UserError(f"--tol expects KEY=VALUE (e.g. raw_score_max=1e-3), got {item!r}")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise UserError(f"--tol {key}: {value!r} is not a number") from None
    return out


@app.command()
@user_errors
def parity(model: list[Path] = typer.Option(..., help="bundle folder (repeat for several)"),
           weights: Optional[Path] = typer.Option(None, help="the PyTorch checkpoint (default: the bundle's "
                                                             "stored golden outputs are the reference)"),
           data: Optional[Path] = typer.Option(None, help="COCO folder: also compare AP on its val split"),
           report: Path = typer.Option(Path("parity_report"), help="folder for parity.json/.md/.png"),
           tol: Optional[list[str]] = typer.Option(None, help="override a tolerance, KEY=VALUE (repeatable): "
                                                             "raw_score_max, raw_box_max, topk_score_max, "
                                                             "top100_match_min, ap_drop_max"),
           max_images: Optional[int] = typer.Option(None, help="use only the first N validation images")):
    """Measure exported artifacts against the PyTorch model; exit code 1 when a tolerance is broken."""
    from rich.progress import Progress

    from .parity import parity as run_parity, write_report

    tolerances = _parse_tolerances(tol)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("measuring", total=None)
        result = run_parity(model, weights, data, tolerances, max_images,
                            progress=lambda n: progress.advance(task, n))
    _print_parity(result, write_report(result, report))
    if not result["ok"]:
        raise typer.Exit(1)


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


@app.command()
@user_errors
def quickstart(out: Path = typer.Option(Path("quickstart"), help="folder for everything it makes"),
               minutes: float = typer.Option(5.0, help="training budget in minutes"),
               imgsz: str = typer.Option("256", help=IMGSZ_HELP + " for training and export"),
               train_images: int = typer.Option(300, help="generated training images"),
               val_images: int = typer.Option(60, help="generated validation images"),
               formats: str = typer.Option("onnx,openvino,tflite", help="comma-separated export formats")):
    """The whole flow on the embedded default: generate data, train rtdetrv2_r18vd briefly, export to
    ONNX, OpenVINO and TFLite, and measure parity (with COCO AP) against the PyTorch model."""
    import time

    from rich.progress import Progress

    from .data.synth import generate
    from .export import export as run_export
    from .parity import parity as run_parity, write_report
    from .train.trainer import TrainConfig, Trainer

    start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if not data.exists():
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("1/4 generating the dataset", total=train_images + val_images)
            generate(data, train_images, val_images, 320, seed=0, progress=lambda: progress.advance(task))
    console.print(f"1/4 dataset {data} ({train_images} train + {val_images} val images, 6 shape classes)")
    run = out / "train"
    cfg = TrainConfig(data=str(data), model="rtdetrv2_r18vd", epochs=1000, batch=4, imgsz=imgsz, out=str(run),
                      lr=2e-4, warmup_iters=50, workers=1, strong_aug=False, time_limit_min=minutes)
    trainer = Trainer(cfg)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"2/4 training for {minutes:g} min", total=None)
        trainer.fit(on_step=lambda i, n, losses, speed: progress.update(
            task, completed=i, total=n, description=f"2/4 training, epoch {trainer.epoch + 1}, "
                                                   f"loss {losses['loss']:.2f}, {speed:.1f} img/s"))
    weights = run / "best.pt"
    last = trainer.history[-1]
    console.print(f"2/4 trained {len(trainer.history)} epochs ({last['minutes']:.1f} min): AP {last['AP']:.3f}, "
                  f"AP50 {last['AP50']:.3f} -> {weights}")
    bundles = []
    for fmt in [f.strip() for f in formats.split(",") if f.strip()]:
        with err.status(f"3/4 exporting {fmt}"):
            bundles.append(run_export(weights, fmt, "fp32", None, 1, False, None, out / "exports" / fmt, force=True))
        console.print(f"3/4 exported {bundles[-1]}")
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("4/4 measuring parity", total=None)
        result = run_parity(bundles, weights, data, progress=lambda n: progress.advance(task, n))
    _print_parity(result, write_report(result, out / "parity"))
    console.print(f"done in {(time.time() - start) / 60:.1f} min")
    if not result["ok"]:
        raise typer.Exit(1)


def main():
    app()


if __name__ == "__main__":
    main()
