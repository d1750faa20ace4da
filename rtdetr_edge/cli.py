"""The `rtdetr-edge` command line (typer). Thin: parse, call one function, print.

Errors a user can cause are one line on stderr and exit code 2; no traceback.
"""

import errno
import functools
import logging
import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import UserError
from .fsutil import check_output
from .quickstart import QuickstartConfig

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="RT-DETRv2 from PyTorch training to verified edge artifacts.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: generate the default synthetic COCO dataset.")
app.add_typer(data_app, name="data")
# tables keep their columns when printed to a file or a pipe (rich would assume 80 columns)
console = Console(width=None if sys.stdout.isatty() else 180)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 180)


_REFUSALS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


def user_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            _error(str(e))
            raise typer.Exit(2)
        except OSError as e:  # the file system refused (a read-only or full disk, no permission): one line
            if e.errno not in _REFUSALS or not e.filename:
                raise
            _error(f"{e.filename}: {e.strerror}")
            raise typer.Exit(2)
        except ModuleNotFoundError as e:
            from .extras import missing_message

            message = missing_message(e.name)
            if message is None:
                raise
            _error(message)
            raise typer.Exit(2)
    return wrapper


def _error(text: str):
    """One line on stderr: 'error: TEXT', TEXT printed literally (a [bracket] in it is text, not markup)."""
    err.print("[red]error:[/red] " + escape(text), markup=True, highlight=False, soft_wrap=True)


def check_number(option: str, value, low=None, high=None, low_open=False):
    """A numeric option within its range, checked at the CLI boundary: NaN, infinities and out-of-range
    values are one line naming the option, exit 2. None (not given) passes."""
    import math

    if value is None:
        return value
    if not math.isfinite(value):
        raise UserError(f"{option} must be a finite number, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise UserError(f"{option} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise UserError(f"{option} must be <= {high}, got {value}")
    return value


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
    _print_shipped()


def _print_shipped():
    from .zoo import shipped_models

    shipped = shipped_models()
    if not shipped:
        return
    table = Table(title="Shipped models (use the name wherever a checkpoint is accepted: --weights NAME)")
    for col in ("name", "variant", "size", "classes", "AP", "AP50", "trained on"):
        table.add_column(col, no_wrap=col != "trained on")
    for name, c in shipped.items():
        m = c.get("metrics", {})
        table.add_row(name, c["variant"], "x".join(map(str, c["imgsz"])), ", ".join(c["class_names"]),
                      f"{m.get('AP', float('nan')):.3f}", f"{m.get('AP50', float('nan')):.3f}",
                      escape(c.get("dataset", "")))
    console.print(table)


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
                                                             "gather, discrete"),
            skip_bad: bool = typer.Option(False, help="skip unreadable images with a warning instead of stopping")):
    """Detect objects in images with a checkpoint or any exported model, print them, optionally draw them."""
    from .model.variants import parse_imgsz
    from .predict import predict as run_predict

    if (weights is None) == (model is None):
        raise UserError("give exactly one of --weights (checkpoint) or --model (bundle or exported file)")
    if model is not None and imgsz:
        raise UserError("--imgsz applies to checkpoints only: an exported model has a fixed input size")
    check_number("--conf", conf, 0.0, 1.0)
    check_output("--save", save, "folder")
    size = parse_imgsz(imgsz) if imgsz else None
    for path, det, names in run_predict(weights or model, source, size, conf, save, sampling,
                                        exported=model is not None, skip_bad=skip_bad):
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
           calib: Optional[str] = typer.Option(None, help="int8: calibration list (calib/NAME, .txt, .yaml, folder): "
                                                          "post-training quantization of an FP32 checkpoint, and "
                                                          "the ranges of the u8s8 and static forms"),
           policy: Optional[str] = typer.Option(None, help="int8 from FP32: placement policy (recipes/policies/) "
                                                           "[default: the recipe's, else default]"),
           int8_form: Optional[str] = typer.Option(None, help="int8: s8s8 (Q/DQ, TensorRT/OpenVINO) or u8s8 "
                                                              "(onnxruntime on x86) for ONNX; static for TFLite "
                                                              "[default: the target runtime's, else s8s8]")):
    """Export a checkpoint to a bundle: artifact + raw twin + manifest.json + golden data for re-verification.
    With --target: checked against the device's runtime, and engine build files for TensorRT."""
    from rich.status import Status

    from .export import export as run_export
    from .export.plan import plan_export

    check_output("--out", out, "any")
    plan = plan_export(target, layer="cli", weights=str(weights), format=format, precision=precision, imgsz=imgsz,
                       batch=batch, dynamic_batch=dynamic_batch, sampling=sampling, opset=opset, simplifier=simplifier,
                       out=str(out) if out else None, force=force or None, calib=calib, policy=policy,
                       int8_form=int8_form, integrations=integrations)
    for message in plan.messages:
        err.print(escape(message), highlight=False, soft_wrap=True)
    cfg = plan.config
    label = plan.target.spec if plan.target else f"{cfg.format} {cfg.precision}"
    with Status(f"exporting {escape(label)}", console=err):
        path = run_export(plan=plan)
    from .bundle import read_manifest

    manifest = read_manifest(path)
    console.print(f"bundle {path}: {manifest['artifact']} ({manifest['format']} {manifest['precision']}, "
                  f"{manifest['sampling']}, {manifest['input']['imgsz'][0]}x{manifest['input']['imgsz'][1]}, "
                  f"batch {manifest['input']['batch']}), raw twin, manifest.json, golden.npz", highlight=False,
                  soft_wrap=True)
    t = manifest.get("target")
    if t:
        check = t.get("graph_check")
        console.print(f"target {t['target']}: {t['title']}, {t['runtime_label']} ({t['runtime']}), runs "
                      f"{t['precision']}" + (f"; graph check passed ({len(next(iter(check['files'].values())))} "
                                             f"rules, {check['nodes']} nodes, opset {check['opset']})"
                                             if check and check.get("passed") else ""), highlight=False,
                      soft_wrap=True)
        if "engine" in t:
            console.print(f"on the device: ./build_engine.sh, then rtdetr-edge verify . --engine model.engine "
                          f"(see {path}/README.md)", highlight=False, soft_wrap=True)
        if "export_machine" in t:
            console.print(f"this CPU ({', '.join(t['export_machine']['cpu']['features']) or 'no SIMD flags read'}) "
                          f"ran OpenVINO in {t['export_machine']['openvino_ran']}", highlight=False, soft_wrap=True)


@app.command()
@user_errors
def targets(name: Optional[str] = typer.Argument(None, help="a target (NAME, NAME@RUNTIME or a YAML file) to show "
                                                            "with its resolved recipe")):
    """The device targets: runtime, precisions, sampling and notes; one target in full with NAME."""
    from .targets import _aliases, resolve, shipped_targets

    if name is None:
        aliases = {}
        for alias, rec in _aliases().items():
            aliases.setdefault(rec, []).append(alias)
        table = Table(title="targets (devices/*.yaml + recipes/*.yaml; NAME@RUNTIME picks another runtime)")
        for col in ("target", "device", "runtimes (default first)", "format", "runs", "sampling", "opset", "notes"):
            table.add_column(col, overflow="fold")
        for t in shipped_targets():
            keys = [t.key] + [k for k in t.device.runtimes if k != t.key]
            runtimes = ", ".join(f"{k}: {t.device.runtimes[k].runtime}" for k in keys)
            notes = t.recipe.description + (f" (alias: {', '.join(aliases[t.name])})" if t.name in aliases else "")
            table.add_row(t.name, t.device.title, runtimes, t.settings["format"], t.precision,
                          t.settings["sampling"], str(t.settings["opset"]) if t.settings["format"] == "onnx"
                          else "-", notes)
        console.print(table)
        return
    t = resolve(name)
    d = t.describe()
    table = Table(title=f"{t.spec}: {t.device.title}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key in ("recipe_file", "device_file", "runtime_label", "runtime", "runtime_version", "precision",
                "max_opset", "dla_cores", "memory_gb"):
        table.add_row(key, str(d[key]))
    for key, value in d["settings"].items():
        table.add_row(f"recipe.{key}", str(value))
    table.add_row("tolerances", ", ".join(f"{k}={v:g}" for k, v in t.tolerances().items()))
    table.add_row("other runtimes", ", ".join(f"{k} ({v.label})" for k, v in t.device.runtimes.items() if k != t.key)
                  or "-")
    for p in t.device.pitfalls:
        table.add_row(f"pitfall {p.id}", f"[{p.guard}] {escape(p.text)}")
    for note in t.runtime.notes:
        table.add_row("note", escape(note))
    console.print(table)


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
    from .verify import rows, verify as run_verify

    check_output("--json", json_out, "file")
    if expect_digest is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", expect_digest.strip()):
        raise UserError(f"--expect-digest: 64 hex digits (manifest.json's digest), got {expect_digest!r}")
    report = run_verify(bundle, engine=engine, outputs=outputs, tolerances=parse_tolerances(tol),
                        expect_digest=expect_digest)
    atomic_write_text(json_out, json.dumps(report, indent=2, default=str))
    title = f"verify {bundle}: {report['ran']} ({report['precision']}" + (
        f", ran {report['runtime_precision']}" if report.get("runtime_precision") else "") + ")"
    table = Table(title=title)
    for col in ("check", "value", "limit", "result"):
        table.add_column(col, justify="right" if col != "check" else "left")
    for name, value, limit, ok in rows(report):
        table.add_row(name, value, limit, "[green]pass[/green]" if ok else "[red]FAIL[/red]")
    console.print(table)
    if report["ok"]:
        console.print(f"[green]verified[/green]: within the tolerances of {report['target'] or 'its precision'}; "
                      f"report {json_out}", highlight=False, soft_wrap=True)
    else:
        console.print(f"[red]FAILED[/red]: {escape('; '.join(report['broken']))}; report {json_out}",
                      highlight=False, soft_wrap=True)
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
         stall_timeout: float = typer.Option(60.0, help="give up on a live source after this many seconds without "
                                                        "a frame (reconnecting all along)")):
    """Detect on a camera, video, stream or folder: boxes, FPS and latency drawn; reconnects a live source."""
    from .demo import display_available, run_demo

    check_number("--conf", conf, 0, 1)
    check_number("--max-frames", max_frames, 1)
    check_number("--stall-timeout", stall_timeout, 0, low_open=True)
    if show is None:
        show = display_available()

    def on_event(msg):
        err.print(escape(msg), highlight=False, soft_wrap=True)

    check_output("--save", save, "file")
    check_output("--json", json_out, "file")
    if not show and save is None and json_out is None:
        err.print("headless: nothing is shown; give --save out.mp4 or --json detections.jsonl to keep the results",
                  highlight=False, soft_wrap=True)
    s = run_demo(model, source, backend=backend, conf=conf, classes=classes, show=show, save=save,
                 max_frames=max_frames, json_path=json_out, on_event=on_event, stall_s=stall_timeout)
    table = Table(title=f"demo: {source} ({s['ended_by']})")
    for col in ("frames read", "processed", "dropped", "reconnects", "FPS", "inference ms mean / p50 / p95",
                "total ms mean / p50 / p95"):
        table.add_column(col, justify="right")
    lat = lambda k: " / ".join(f"{s[k][q]:.1f}" for q in ("mean", "p50", "p95")) if k in s else "-"  # noqa: E731
    table.add_row(str(s["frames_read"]), str(s["frames_processed"]), str(s["frames_dropped"]), str(s["reconnects"]),
                  f"{s['fps']:.1f}", lat("inference_ms"), lat("total_ms"))
    console.print(table)
    for path, what in ((save, "video"), (json_out, "detections")):
        if path is not None and s["frames_processed"]:
            console.print(f"{what}: {path}", highlight=False, soft_wrap=True)


@app.command()
@user_errors
def benchmark(model: list[str] = typer.Option(..., help="bundle, exported file or checkpoint (repeat; the first is "
                                                        "the baseline of the speed-up)"),
              runs: int = typer.Option(30, help="timed runs per model (round-robin)"),
              warmup: int = typer.Option(3, help="untimed runs per model first"),
              threads: Optional[int] = typer.Option(None, help="CPU threads per runtime (default: the runtime's)"),
              batch: int = typer.Option(1, help="images per inference"),
              out: Path = typer.Option(Path("benchmark"), help="folder for benchmark.json/.md/.png")):
    """Time artifacts side by side in one process: p50/p90/p99, FPS, memory, the precision each really ran."""
    from rich.progress import Progress

    from .benchmark import benchmark as run_benchmark, write_report

    check_number("--runs", runs, 1)
    check_number("--warmup", warmup, 0)
    check_number("--threads", threads, 1)
    check_number("--batch", batch, 1, 64)
    check_output("--out", out, "folder")
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("timing (round-robin)", total=runs)
        report = run_benchmark(model, runs=runs, warmup=warmup, threads=threads, batch=batch,
                               progress=lambda i, n: progress.update(task, completed=i))
    paths = write_report(report, out)
    cpu = report["cpu"]
    table = Table(title=f"{cpu['model']} ({cpu['cores']} cores; {', '.join(cpu['features']) or '-'}), batch {batch}, "
                        f"{runs} runs round-robin")
    for col in ("model", "ran", "p50 ms", "p90 ms", "p99 ms", "FPS", "memory MB", "vs first"):
        table.add_column(col, justify="left" if col in ("model", "ran") else "right")
    for e in report["models"]:
        table.add_row(escape(e["name"]), escape(e["ran"]), f"{e['p50_ms']:.1f}", f"{e['p90_ms']:.1f}",
                      f"{e['p99_ms']:.1f}", f"{e['fps']:.1f}", f"{e['memory_mb']:.0f}",
                      f"{e['speedup_vs_first']:.2f}x")
    console.print(table)
    console.print(f"report: {paths['json']}, {paths['md']}, {paths['png']}", highlight=False, soft_wrap=True)


def _print_parity(result, paths):
    from .parity import COLUMNS, artifact_name, fmt_metric, gate_text

    cols = [c for c in COLUMNS if any(c[0] in a["metrics"] for a in result["artifacts"])]
    table = Table(title="parity vs " + (str(result["weights"]) if result["weights"] else "stored golden outputs"))
    table.add_column("artifact", no_wrap=True)
    for _, title, _ in cols:
        table.add_column(title, justify="right")
    table.add_column("result")
    for a in result["artifacts"]:
        verdict = "[green]pass[/green]" if a["ok"] else "[red]FAIL[/red] " + escape("; ".join(a["broken"]))
        table.add_row(artifact_name(a), *(fmt_metric(a["metrics"], k, f) for k, _, f in cols), verdict)
    console.print(table)
    for a in result["artifacts"]:  # what each AP gate could resolve, in words
        if gate_text(a):
            console.print(f"{escape(artifact_name(a))}: {escape(gate_text(a))}", highlight=False, soft_wrap=True)
    console.print(f"report: {paths['json']}, {paths['md']}, {paths['png']}", highlight=False, soft_wrap=True)


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

    check_number("--max-images", max_images, 1)
    check_output("--report", report, "folder")

    from .compare import parse_tolerances
    from .parity import parity as run_parity, write_report

    tolerances = parse_tolerances(tol)
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
    for option, value, low, low_open in [("--epochs", epochs, 1, False), ("--batch", batch, 1, False),
                                         ("--lr", lr, 0, True), ("--warmup-iters", warmup_iters, 0, False),
                                         ("--ema-warmups", ema_warmups, 1, False), ("--workers", workers, 0, False),
                                         ("--stop-epoch", stop_epoch, 0, False),
                                         ("--time-limit", time_limit, 0, True)]:
        check_number(option, value, low, low_open=low_open)
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
    from .ui import fit_with_progress

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
        lr: Optional[float] = typer.Option(None, help="AdamW learning rate, backbone at 0.1x [default: QATConfig's, "
                                                      "1e-5]"),
        batch: Optional[int] = typer.Option(None, help="images per batch [default: QATConfig's, 4]"),
        imgsz: Optional[str] = typer.Option(None, help=IMGSZ_HELP + " (default: the checkpoint's)"),
        distill: bool = typer.Option(True, "--distill/--no-distill",
                                     help="also match the FP32 model's hybrid-encoder feature maps"),
        out: Path = typer.Option(Path("runs/qat"), help="run folder (last.pt, best.pt, metrics.csv/png)"),
        resume: bool = typer.Option(False, help="continue exactly from OUT/last.pt"),
        workers: int = typer.Option(1, help="data loader worker processes"),
        seed: int = typer.Option(0, help="random seed"),
        sensitivity: bool = typer.Option(False, help="instead of training: quantize one group at a time and "
                                                      "write a ranked table and a suggested policy to OUT"),
        max_images: Optional[int] = typer.Option(None, help="--sensitivity: validation images used for AP")):
    """Quantization-aware fine-tuning (INT8 fake-quant from nvidia-modelopt) of a trained FP32 checkpoint;
    the result exports with `export --precision int8`."""
    for option, value, low, low_open in [("--epochs", epochs, 1, False), ("--batch", batch, 1, False),
                                         ("--lr", lr, 0, True), ("--workers", workers, 0, False),
                                         ("--minutes", minutes, 0, True), ("--max-images", max_images, 1, False)]:
        check_number(option, value, low, low_open=low_open)
    check_output("--out", out, "folder")
    if not data:
        raise UserError("--data is required (the COCO folder the model was trained on)")
    if not weights and not resume:
        raise UserError("--weights is required: QAT fine-tunes a trained FP32 checkpoint")
    from .quant.settings import checkpoint_imgsz, quantization_inputs

    policy, calib, calib_list = quantization_inputs(recipe, policy, calib, resume, out)
    if sensitivity:
        from rich.progress import Progress

        from .quant.sensitivity import print_table, scan, write_report

        with Progress(console=err, transient=True) as progress:
            report = scan(weights, data, calib_list, imgsz=imgsz, max_images=max_images, progress=progress)
        files = write_report(report, out)
        print_table(report, console)
        console.print(f"report: {', '.join(str(f) for f in files.values())}")
        return
    from .quant.qat import QATConfig, QATTrainer

    from .ui import fit_with_progress

    schedule = {k: v for k, v in dict(epochs=epochs, batch=batch, lr=lr).items() if v is not None}
    cfg = QATConfig(data=str(data), weights=str(weights) if weights else None,
                    imgsz=imgsz or checkpoint_imgsz(weights or out / "last.pt"), out=str(out), resume=resume,
                    workers=workers, time_limit_min=minutes, seed=seed, policy=policy, calib=calib, distill=distill,
                    **schedule)
    trainer = QATTrainer(cfg)
    if trainer.epoch >= cfg.epochs:
        raise UserError(f"{out}/last.pt already finished {trainer.epoch} epochs; raise --epochs to train more")
    fit_with_progress(trainer, err)
    ptq = f"; PTQ baseline AP {trainer.ptq_metrics['AP']:.3f}" if trainer.ptq_metrics else ""
    console.print(f"run folder {out}: last.pt, best.pt (INT8 fake-quant AP {trainer.best_ap:.3f}{ptq}), "
                  f"metrics.csv, metrics.png; export with `rtdetr-edge export --weights {out}/best.pt "
                  f"--precision int8`")


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
    err.print(dataset.report(), highlight=False, soft_wrap=True)
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
        from .fsutil import atomic_write_text

        atomic_write_text(json_out, json.dumps({"weights": str(weights), "annotations": str(ann),
                                                "imgsz": list(model.imgsz), **metrics}, indent=2))
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
    check_output("OUT", out, "folder")
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("generating images", total=train + val)
        generate(out, train, val, imgsz, seed, progress=lambda: progress.advance(task))
    console.print(f"wrote {out}: {train} train + {val} val images of {imgsz}px, classes: {', '.join(CLASSES)}")


@app.command()
@user_errors
def quickstart(out: Path = typer.Option(Path("quickstart"), help="folder for everything it makes"),
               weights: Path = typer.Option(Path("shapes"), help="model to start from (default: the shipped "
                                                                 "reference model)"),
               minutes: float = typer.Option(3.0, help="fine-tuning budget in minutes"),
               train_images: int = typer.Option(200, help="generated training images"),
               val_images: int = typer.Option(QuickstartConfig.val_images, help="generated validation images (the AP gate's "
                                                                   "resolution grows with them)"),
               formats: str = typer.Option("onnx,openvino,tflite", help="comma-separated export formats"),
               qat_minutes: float = typer.Option(2.0, help="quantization-aware fine-tuning budget in minutes; "
                                                           "each format is also exported INT8 (0: no INT8)"),
               seed: int = typer.Option(1, help="seed of the generated data (the reference model saw seed 0)")):
    """The whole flow on the embedded default: generate fresh data, fine-tune the shipped reference model on
    it briefly, quantization-aware fine-tuning (INT8), export to ONNX, OpenVINO and TFLite in FP32 and INT8,
    measure parity with COCO AP against the FP32 PyTorch model, and save an image with the detections
    drawn."""
    from .quickstart import STEPS, run

    cfg = QuickstartConfig(out=str(out), weights=str(weights), minutes=minutes, qat_minutes=qat_minutes,
                           train_images=train_images, val_images=val_images, seed=seed,
                           formats=tuple(f.strip() for f in formats.split(",") if f.strip())).validate()
    check_output("--out", out, "folder")

    steps = console  # the steps on stdout; progress bars on stderr

    class Reporter:
        console = err

        def step(self, n, text):
            steps.print(f"{n}/{STEPS} {escape(text)}", highlight=False, soft_wrap=True)

        def parity(self, report, paths):
            _print_parity(report, paths)

    result = run(cfg, Reporter())
    console.print(f"done in {result['minutes']:.1f} min")
    if not result["ok"]:
        raise typer.Exit(1)


def quiet_libraries():
    """A user sees our messages, not the libraries' noise: JAX (imported by TFLite's INT8 quantizer) warns at
    every os.fork() that forking a multithreaded process may deadlock; our forks (data loader workers,
    subprocesses) run no JAX."""
    import warnings

    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)


def main():
    """Entry point: click's own usage errors (a missing option, `--batch abc`) become one line, exit 2."""
    # click's exception base, reached through typer's public BadParameter (typer >= 0.29 carries its own click)
    click_exception = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    quiet_libraries()
    try:
        code = app(standalone_mode=False)  # without standalone mode, click returns typer.Exit's code
    except (KeyboardInterrupt, typer.Abort):
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except click_exception as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `rtdetr-edge` or `rtdetr-edge data` alone: the help
            console.print(e.ctx.get_help())
            sys.exit(0)
        where = f" ({e.ctx.command_path})" if getattr(e, "ctx", None) is not None else ""
        err.print(f"[red]error:[/red] {escape(e.format_message())}{escape(where)}", markup=True, highlight=False,
                  soft_wrap=True)
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
