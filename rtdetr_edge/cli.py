"""The `rtdetr-edge` command line (typer). Thin: parse the options, call one library function, show the
result (rtdetr_edge.show). Errors a user can cause are one line on stderr and exit code 2 (clikit)."""

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from . import show as view
from .clikit import console, err, progress, user_errors
from .errors import UserError, check_number
from .fsutil import check_output
from .quickstart import QuickstartConfig
from .ui import fit_with_progress

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="RT-DETRv2 from PyTorch training to verified edge artifacts.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: generate the default synthetic COCO dataset.")
app.add_typer(data_app, name="data")


IMGSZ_HELP = "input size: 640 (square) or HEIGHTxWIDTH like 480x640; multiples of 32"


@app.command()
@user_errors
def models(imgsz: str = typer.Option("640", help=IMGSZ_HELP)):
    """List the RT-DETRv2 variants with their parameter count and GFLOPs (counted, not copied)."""
    from .model.variants import parse_imgsz

    view.models(console, parse_imgsz(imgsz))


@app.command()
@user_errors
def init(variant: str = typer.Option("rtdetrv2_r18vd", help="model variant (see `rtdetr-edge models`)"),
         out: Path = typer.Option(..., help="checkpoint file to write"),
         num_classes: int = typer.Option(80, help="number of classes"),
         imgsz: str = typer.Option("640", help=IMGSZ_HELP),
         seed: int = typer.Option(0, help="random seed"),
         force: bool = typer.Option(False, help="replace an existing checkpoint file")):
    """Write an untrained (randomly initialised) checkpoint: for pipeline and export checks, not for detection."""
    check_number("--num-classes", num_classes, 1)
    check_output("--out", out, "file")
    if out.exists() and not force:
        raise UserError(f"--out {out}: exists; pass --force to replace it")
    from .model.checkpoint import write_untrained

    write_untrained(out, variant, num_classes, imgsz, seed)
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
                                                             "gather, discrete"),
            skip_bad: bool = typer.Option(False, help="skip unreadable images with a warning instead of stopping")):
    """Detect objects in images with a checkpoint or any exported model, print them, optionally draw them."""
    from .predict import predict as run_predict

    if (weights is None) == (model is None):
        raise UserError("give exactly one of --weights (checkpoint) or --model (bundle or exported file)")
    if model is not None and imgsz:
        raise UserError("--imgsz applies to checkpoints only: an exported model has a fixed input size")
    check_number("--conf", conf, 0.0, 1.0)
    check_output("--save", save, "folder")
    for path, det, names in run_predict(weights or model, source, imgsz or None, conf, save, sampling,
                                        exported=model is not None, skip_bad=skip_bad):
        view.detections(console, path, det, names, conf)
    if save is not None:
        console.print(f"drawn images saved in {save}")


@app.command()
@user_errors
def export(weights: Path = typer.Option(..., help="checkpoint (ours or the authors')"),
           target: Optional[str] = typer.Option(None, help="device target: NAME or NAME@RUNTIME (e.g. jetson-orin-nano"
                                                           "@jp5.1, jetson, cpu) or a YAML file; its recipe fills "
                                                           "what you do not give (see `rtdetr-edge targets`)"),
           format: Optional[str] = typer.Option(None, "--format", help="onnx, openvino or tflite [default: onnx]"),
           precision: Optional[str] = typer.Option(None, help="fp32, fp16 or int8 (what the format offers) "
                                                              "[default: fp32]; int8 from a QAT checkpoint, or "
                                                              "post-training from an FP32 one with --calib"),
           imgsz: Optional[str] = typer.Option(None, help=IMGSZ_HELP + " (default: the checkpoint's)"),
           batch: Optional[int] = typer.Option(None, help="fixed batch size [default: 1]"),
           dynamic_batch: Optional[bool] = typer.Option(None, "--dynamic-batch", help="any batch size "
                                                                                      "(ONNX/OpenVINO)"),
           sampling: Optional[str] = typer.Option(None, help="grid_sample, gather or discrete (default: grid_sample; "
                                                             "gather for TFLite)"),
           opset: Optional[int] = typer.Option(None, help="ONNX opset, 13..21 [default: 17]"),
           simplifier: Optional[str] = typer.Option(None, help="onnxslim, onnxsim or none [default: onnxslim]; kept "
                                                               "only when outputs stay the same"),
           out: Optional[Path] = typer.Option(None, help="bundle folder to create (default: exports/NAME)"),
           force: bool = typer.Option(False, help="replace an existing bundle folder (never anything else)"),
           integrations: Optional[str] = typer.Option(None, help="deepstream, triton, ros2 (comma-separated) or "
                                                                 "none: serving files added to the bundle "
                                                                 "[default: the recipe's]"),
           raw_twin: Optional[bool] = typer.Option(None, "--raw-twin/--no-raw-twin", help="the network again "
                                                   "before top-k, for pre-top-k parity [default: the recipe's, on]"),
           calib: Optional[str] = typer.Option(None, help="int8: calibration list (calib/NAME, .txt, .yaml, folder): "
                                                          "post-training quantization of an FP32 checkpoint, and "
                                                          "the ranges of the u8s8 and static forms"),
           policy: Optional[str] = typer.Option(None, help="int8 from FP32: placement policy (recipes/policies/) "
                                                           "[default: the recipe's, else default]"),
           int8_form: Optional[str] = typer.Option(None, help="int8: s8s8 (Q/DQ, TensorRT/OpenVINO) or u8s8 "
                                                              "(onnxruntime on x86) for ONNX; static for TFLite "
                                                              "[default: the target runtime's, else s8s8]"),
           int8_float: Optional[str] = typer.Option(None, help="int8, OpenVINO: f32 or bf16, the precision of the "
                                                               "layers that stay float (bf16: faster on AVX512-BF16/"
                                                               "AMX CPUs, less accurate) [default: the recipe's, "
                                                               "else f32]")):
    """Export a checkpoint to a bundle: artifact + raw twin + manifest.json + golden data for re-verification.
    With --target: checked against the device's runtime, and engine build files for TensorRT."""
    from rich.status import Status

    from .export import export as run_export
    from .export.plan import plan_export

    check_output("--out", out, "any")
    plan = plan_export(target, layer="cli", weights=str(weights), format=format, precision=precision, imgsz=imgsz,
                       batch=batch, dynamic_batch=dynamic_batch, sampling=sampling, opset=opset, simplifier=simplifier,
                       out=str(out) if out else None, force=force or None, calib=calib, policy=policy,
                       int8_form=int8_form, int8_float=int8_float, integrations=integrations, raw_twin=raw_twin)
    for message in plan.messages:
        err.print(escape(message), highlight=False, soft_wrap=True)
    label = plan.target.spec if plan.target else f"{plan.config.format} {plan.config.precision}"
    with Status(f"exporting {escape(label)}", console=err):
        path = run_export(plan=plan)
    from .bundle import read_manifest

    view.exported(console, path, read_manifest(path))


@app.command()
@user_errors
def targets(name: Optional[str] = typer.Argument(None, help="a target (NAME, NAME@RUNTIME or a YAML file) to show "
                                                            "with its resolved recipe")):
    """The device targets: runtime, precisions, sampling and notes; one target in full with NAME."""
    from .targets import _aliases, resolve, shipped_targets

    if name is None:
        view.targets(console, shipped_targets(), _aliases())
    else:
        view.target(console, resolve(name))


@app.command()
@user_errors
def verify(bundle: Path = typer.Argument(..., help="bundle folder"),
           engine: Optional[Path] = typer.Option(None, help="a TensorRT engine built from the bundle "
                                                            "(build_engine.sh) to run instead of its artifact"),
           outputs: Optional[Path] = typer.Option(None, help="outputs trtexec wrote for the golden inputs "
                                                             "(run_golden.sh: golden_outputs.json) to check"),
           tol: Optional[list[str]] = typer.Option(None, help="override a tolerance, KEY=VALUE (repeatable)"),
           expect_digest: Optional[str] = typer.Option(None, help="the manifest digest you were given with the "
                                                                  "bundle (64 hex digits): pins it"),
           json_out: Path = typer.Option(Path("verify.json"), "--json", help="where to write the report")):
    """Run a bundle (or the engine built from it) on its golden inputs on this machine and compare with the
    golden outputs under the recipe's tolerances: exit 0 when within, 1 when not. No PyTorch needed."""
    import json

    from .compare import parse_tolerances
    from .fsutil import atomic_write_text
    from .verify import verify as run_verify

    check_output("--json", json_out, "file")
    report = run_verify(bundle, engine=engine, outputs=outputs, tolerances=parse_tolerances(tol),
                        expect_digest=expect_digest)
    atomic_write_text(json_out, json.dumps(report, indent=2, default=str))
    view.verified(console, bundle, report, json_out)
    if not report["ok"]:
        raise typer.Exit(1)


@app.command()
@user_errors
def demo(model: str = typer.Option(..., help="bundle folder, exported file (.onnx/.xml/.tflite/.engine) or checkpoint"),
         source: str = typer.Option("0", help="camera index (0), video file, rtsp://..., http://..., folder of "
                                              "images, or csi://N (Jetson CSI camera)"),
         backend: Optional[str] = typer.Option(None, help="runtime backend (default: from the file type)"),
         conf: float = typer.Option(0.5, help="score threshold"),
         classes: Optional[list[str]] = typer.Option(None, help="only these classes (names or indices; repeat or "
                                                                "comma-separate)"),
         show: Optional[bool] = typer.Option(None, "--show/--headless", help="open a window (default: when a "
                                                                             "display and a GUI OpenCV exist)"),
         save: Optional[Path] = typer.Option(None, help="write the drawn frames to a video (.mp4 or .avi)"),
         max_frames: Optional[int] = typer.Option(None, help="stop after N processed frames"),
         json_out: Optional[Path] = typer.Option(None, "--json", help="write detections per frame as JSON lines"),
         stall_timeout: float = typer.Option(60.0, help="give up on a live source after this many seconds")):
    """Detect on a camera, video, stream or folder: boxes, FPS and latency drawn; reconnects a live source."""
    from .demo import display_available, run_demo

    check_number("--conf", conf, 0, 1)
    check_number("--max-frames", max_frames, 1)
    check_number("--stall-timeout", stall_timeout, 0, low_open=True)
    show = display_available() if show is None else show

    check_output("--save", save, "file")
    check_output("--json", json_out, "file")
    if not show and save is None and json_out is None:
        err.print("headless: nothing is shown; give --save out.mp4 or --json detections.jsonl to keep the results",
                  highlight=False, soft_wrap=True)
    s = run_demo(model, source, backend=backend, conf=conf, classes=classes, show=show, save=save,
                 max_frames=max_frames, json_path=json_out, stall_s=stall_timeout,
                 on_event=lambda msg: err.print(escape(msg), highlight=False, soft_wrap=True))
    view.demo(console, s, source, save, json_out)


@app.command()
@user_errors
def benchmark(model: list[str] = typer.Option(..., help="bundle, exported file or checkpoint (repeat; the first is "
                                                        "the baseline of the speed-up)"),
              runs: int = typer.Option(30, help="timed runs per model (round-robin)"),
              warmup: int = typer.Option(3, help="untimed runs per model first"),
              block: int = typer.Option(3, help="runs of one model in a row per turn; the first of each is "
                                                "untimed (it pays for the model before) and reported apart; "
                                                "1: one run per turn, all timed"),
              processes: int = typer.Option(0, help="N >= 1: time each model alone in N fresh processes, one at a "
                                                    "time (as a deployed model runs), instead of side by side in one; "
                                                    "from 5 on, each speed-up gets a 95% interval"),
              threads: Optional[int] = typer.Option(None, help="CPU threads per runtime (default: the runtime's)"),
              batch: int = typer.Option(1, help="images per inference"),
              out: Path = typer.Option(Path("benchmark"), help="folder for benchmark.json/.md/.png")):
    """Time artifacts side by side in one process (or each alone: --processes): p50/p90/p99, FPS, memory, the
    precision each really ran."""
    from .benchmark import benchmark as run_benchmark, write_report

    for option, value, low, high in (("--runs", runs, 1, None), ("--warmup", warmup, 0, None),
                                     ("--threads", threads, 1, None), ("--batch", batch, 1, 64),
                                     ("--block", block, 1, 100), ("--processes", processes, 0, 1000)):
        check_number(option, value, low, high)
    check_output("--out", out, "folder")
    rounds = processes or -(-runs // max(1, block - 1))
    with progress("timing (each model alone)" if processes else "timing (round-robin)", rounds) as advance:
        report = run_benchmark(model, runs=runs, warmup=warmup, threads=threads, batch=batch, block=block,
                               processes=processes, progress=lambda i, n: advance.update(completed=i))
    view.benchmark(console, report, write_report(report, out), batch, report["runs"])


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
    check_number("--max-images", max_images, 1)
    check_output("--report", report, "folder")

    from .compare import parse_tolerances
    from .parity import parity as run_parity, write_report

    tolerances = parse_tolerances(tol)
    with progress("measuring") as advance:
        result = run_parity(model, weights, data, tolerances, max_images, progress=advance)
    view.parity(console, result, write_report(result, report))
    if not result["ok"]:
        raise typer.Exit(1)


@app.command()
@user_errors
def train(data: Optional[Path] = typer.Option(None, help="COCO folder: annotations/instances_{train,val}*.json + "
                                                          "{train,val}*/ images"),
          model: Optional[str] = typer.Option(None, help="variant (`rtdetr-edge models`); default: --weights' own"),
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
    check_output("--out", out, "folder")
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
    fit_with_progress(trainer, err)
    if trainer.rank == 0:
        console.print(f"run folder {out}: last.pt, best.pt (AP {trainer.best_ap:.3f}), metrics.csv, metrics.png")


@app.command()
@user_errors
def qat(weights: Optional[Path] = typer.Option(None, help="the trained FP32 checkpoint to fine-tune"),
        data: Optional[Path] = typer.Option(None, help="COCO folder the model was trained on (train + val splits)"),
        recipe: Optional[str] = typer.Option(None, help="a target (`rtdetr-edge targets`) or recipe file: its "
                                                         "quantization policy and calibration list"),
        policy: Optional[str] = typer.Option(None, help="quantization policy: a name in recipes/policies/ or a "
                                                         "YAML file (default: the recipe's, else 'default')"),
        calib: Optional[str] = typer.Option(None, help="calibration list (calib/NAME, .txt, .yaml or a folder; "
                                                        "default: the recipe's, else shapes-64)"),
        epochs: Optional[int] = typer.Option(None, help="fine-tuning epochs [default: QATConfig's, 3]"),
        minutes: Optional[float] = typer.Option(None, help="stop after this many minutes (evaluates first)"),
        lr: Optional[float] = typer.Option(None, help="AdamW learning rate, backbone at 0.1x [default: 1e-5]"),
        batch: Optional[int] = typer.Option(None, help="images per batch [default: QATConfig's, 4]"),
        imgsz: Optional[str] = typer.Option(None, help=IMGSZ_HELP + " (default: the checkpoint's)"),
        weight_bits: int = typer.Option(7, help="7: weights on a 7-bit grid, accurate on every x86 CPU (without "
                                        "VNNI, 8-bit weights saturate int16 sums); 8: the full grid (GPU, ARM)"),
        distill: bool = typer.Option(True, "--distill/--no-distill", help="also match the FP32 encoder's maps"),
        out: Path = typer.Option(Path("runs/qat"), help="run folder (last.pt, best.pt, metrics.csv/png)"),
        resume: bool = typer.Option(False, help="continue exactly from OUT/last.pt"),
        workers: int = typer.Option(1, help="data loader worker processes"),
        seed: int = typer.Option(0, help="random seed"),
        sensitivity: bool = typer.Option(False, help="instead of training: quantize one group at a time and "
                                                      "write a ranked table and a suggested policy to OUT"),
        max_images: Optional[int] = typer.Option(None, help="--sensitivity: validation images used for AP")):
    """Quantization-aware fine-tuning (INT8 fake-quant from nvidia-modelopt) of a trained FP32 checkpoint;
    the result exports with `export --precision int8`."""
    check_number("--max-images", max_images, 1)
    check_output("--out", out, "folder")
    if not data:
        raise UserError("--data is required (the COCO folder the model was trained on)")
    if not weights and not resume:
        raise UserError("--weights is required: QAT fine-tunes a trained FP32 checkpoint")
    from .quant.settings import checkpoint_imgsz, quantization_inputs

    policy, calib, calib_list = quantization_inputs(recipe, policy, calib, resume, out)
    if sensitivity:
        from .quant.sensitivity import print_table, scan_and_write

        with progress("sensitivity") as advance:
            report, files = scan_and_write(weights, data, calib_list, out, imgsz, max_images, advance.bar)
        print_table(report, console)
        console.print(f"report: {', '.join(str(f) for f in files.values())}")
        return
    from .quant.qat import QATConfig, QATTrainer

    schedule = {k: v for k, v in dict(epochs=epochs, batch=batch, lr=lr).items() if v is not None}
    cfg = QATConfig(data=str(data), weights=str(weights) if weights else None,
                    imgsz=imgsz or checkpoint_imgsz(weights or out / "last.pt"), out=str(out), resume=resume,
                    workers=workers, time_limit_min=minutes, seed=seed, policy=policy, calib=calib, distill=distill,
                    weight_bits=weight_bits, **schedule)
    trainer = QATTrainer(cfg)
    if trainer.epoch >= cfg.epochs:
        raise UserError(f"{out}/last.pt already finished {trainer.epoch} epochs; raise --epochs to train more")
    fit_with_progress(trainer, err)
    view.qat_done(console, trainer, out)


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

    check_number("--batch", batch, 1)
    check_output("--json", json_out, "file")

    from .train.evaluate import evaluate_checkpoint

    with progress("evaluating") as advance:
        result = evaluate_checkpoint(weights, data, val_json, images, imgsz, sampling, batch, skip_bad, advance,
                                     on_total=lambda n: advance.update(total=n),
                                     say=lambda text: err.print(text, highlight=False, soft_wrap=True))
    view.metrics(console, result["metrics"], f"COCO bbox metrics — {weights} on {result['annotations']}")
    if json_out:
        from .fsutil import atomic_write_text

        atomic_write_text(json_out, json.dumps({"weights": str(weights), "annotations": result["annotations"],
                                                "imgsz": result["imgsz"], **result["metrics"]}, indent=2))
        console.print(f"metrics written to {json_out}")


@data_app.command("synth")
@user_errors
def data_synth(out: Path = typer.Argument(..., help="folder to create (must not exist or be empty)"),
               train: int = typer.Option(400, help="training images"),
               val: int = typer.Option(100, help="validation images"),
               imgsz: int = typer.Option(320, help="image side in pixels"),
               seed: int = typer.Option(0, help="seed; the same seed gives the same dataset")):
    """Generate the default dataset: COCO-format shapes on cluttered backgrounds (nothing downloaded)."""
    from .data.synth import CLASSES, generate

    check_output("OUT", out, "folder")
    with progress("generating images", train + val) as advance:
        generate(out, train, val, imgsz, seed, progress=advance)
    console.print(f"wrote {out}: {train} train + {val} val images of {imgsz}px, classes: {', '.join(CLASSES)}")


@app.command()
@user_errors
def quickstart(out: Path = typer.Option(Path("quickstart"), help="folder for everything it makes"),
               weights: Path = typer.Option(Path("shapes"), help="model to start from (default: the shipped "
                                                                 "reference model)"),
               epochs: int = typer.Option(QuickstartConfig.epochs, help="fine-tuning epochs"),
               qat_epochs: int = typer.Option(QuickstartConfig.qat_epochs, help="QAT epochs; each format is also "
                                                                              "exported INT8 (0: no INT8)"),
               minutes: Optional[float] = typer.Option(None, help="cap on the fine-tuning's minutes"),
               qat_minutes: Optional[float] = typer.Option(None, help="cap on QAT's minutes (0: no INT8)"),
               train_images: int = typer.Option(200, help="generated training images"),
               val_images: int = typer.Option(QuickstartConfig.val_images, help="generated validation images (they "
                                                                               "pick the best epoch)"),
               gate_images: int = typer.Option(QuickstartConfig.gate_images, help="generated images the accuracy gates "
                                                                                 "are measured on (0: the validation "
                                                                                 "images)"),
               formats: str = typer.Option("onnx,openvino,tflite", help="comma-separated export formats"),
               seed: int = typer.Option(1, help="seed of the generated data (the reference model saw seed 0)"),
               calib: str = typer.Option(QuickstartConfig.calib, help="calibration list for QAT's starting ranges")):
    """The whole flow on the embedded default: fresh data, a short fine-tune of the shipped model, QAT, export to
    ONNX, OpenVINO and TFLite in FP32 and INT8, parity with COCO AP against PyTorch, one image drawn."""
    from .quickstart import STEPS, run

    cfg = QuickstartConfig(out=str(out), weights=str(weights), epochs=epochs, qat_epochs=qat_epochs, minutes=minutes,
                           qat_minutes=qat_minutes, train_images=train_images, val_images=val_images,
                           gate_images=gate_images, seed=seed, formats=formats, calib=calib).validate()
    check_output("--out", out, "folder")

    result = run(cfg, view.QuickstartReporter(console, err, STEPS))
    console.print(f"done in {result['minutes']:.1f} min")
    if not result["ok"]:
        raise typer.Exit(1)


def main():
    """Entry point of the console script."""
    from .clikit import run

    run(app)


if __name__ == "__main__":
    main()
