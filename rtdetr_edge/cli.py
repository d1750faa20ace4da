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
