"""What the commands print: rich tables and summary lines built from the library's results.

cli.py parses options and calls one library function per command; the printing lives here, so a command
reads as options -> call -> show. Every string that came from a file or a user is escaped (a [bracket] in a
class name is text, not markup).
"""

from rich.markup import escape
from rich.table import Table


def _line(console, text):
    console.print(text, highlight=False, soft_wrap=True)


def models(console, size):
    from .model.stats import model_stats
    from .model.variants import VARIANTS

    table = Table(title=f"RT-DETRv2 variants (80 classes, {size[0]}x{size[1]})")
    for col in ("variant", "name", "params M", "GFLOPs", "dec layers", "pub. AP"):
        table.add_column(col, justify="right" if col not in ("variant", "name") else "left", no_wrap=True)
    for name, v in VARIANTS.items():
        params, gflops = model_stats(name, size)
        layers = f"{v.dec_layers} (eval {(v.eval_idx % v.dec_layers) + 1})"
        table.add_row(name, f"RT-DETRv2-{v.alias}" if v.released else f"{v.alias} (ours)", f"{params / 1e6:.1f}",
                      f"{gflops:.1f}", layers, f"{v.published_ap:.1f}" if v.released else "-")
    console.print(table)
    console.print("GFLOPs = 2 x multiply-accumulates of the deploy form (RepVGG fused), counted with "
                  "torch.utils.flop_counter; published AP is the authors' COCO val2017 number at 640.")
    shipped(console)


def shipped(console):
    from .zoo import shipped_models

    models_ = shipped_models()
    if not models_:
        return
    table = Table(title="Shipped models (use the name wherever a checkpoint is accepted: --weights NAME)")
    for col in ("name", "variant", "size", "classes", "AP", "AP50", "trained on"):
        table.add_column(col, no_wrap=col != "trained on")
    for name, c in models_.items():
        m = c.get("metrics", {})
        table.add_row(name, c["variant"], "x".join(map(str, c["imgsz"])), ", ".join(c["class_names"]),
                      f"{m.get('AP', float('nan')):.3f}", f"{m.get('AP50', float('nan')):.3f}",
                      escape(c.get("dataset", "")))
    console.print(table)


def detections(console, path, det, names, conf):
    _line(console, f"{path}: {len(det)} detections (score >= {conf})")
    if not len(det):
        return
    table = Table()
    for col in ("class", "score", "x0", "y0", "x1", "y1"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for label, box, score in zip(det.labels, det.boxes, det.scores):
        name = names[int(label)] if int(label) < len(names) else str(int(label))
        table.add_row(escape(name), f"{score:.3f}", *(f"{v:.1f}" for v in box))
    console.print(table)


def exported(console, path, manifest):
    m = manifest
    _line(console, f"bundle {path}: {m['artifact']} ({m['format']} {m['precision']}, {m['sampling']}, "
                   f"{m['input']['imgsz'][0]}x{m['input']['imgsz'][1]}, batch {m['input']['batch']}), "
                   + ("raw twin, " if any(a["kind"] == "raw" for a in m["artifacts"]) else "no raw twin, ")
                   + "manifest.json, golden.npz")
    t = m.get("target")
    if t:
        check = t.get("graph_check")
        _line(console, f"target {t['target']}: {t['title']}, {t['runtime_label']} ({t['runtime']}), runs "
                       f"{t['precision']}" + (f"; graph check passed ({len(next(iter(check['files'].values())))} "
                                              f"rules, {check['nodes']} nodes, opset {check['opset']})"
                                              if check and check.get("passed") else ""))
        if "engine" in t:
            _line(console, f"on the device: ./build_engine.sh, then rtdetr-edge verify . --engine model.engine "
                           f"(see {path}/README.md)")
        if "export_machine" in t:
            _line(console, f"this CPU ({', '.join(t['export_machine']['cpu']['features']) or 'no SIMD flags read'}) "
                           f"ran OpenVINO in {t['export_machine']['openvino_ran']}")
    if m.get("integrations"):
        _line(console, "serving files: " + ", ".join(f"{name} ({e['folder']}/)" for name, e in
                                                     m["integrations"].items()) + f"; see {path}/README.md")


def targets(console, shipped_targets, aliases):
    by_recipe = {}
    for alias, rec in aliases.items():
        by_recipe.setdefault(rec, []).append(alias)
    table = Table(title="targets (devices/*.yaml + recipes/*.yaml; NAME@RUNTIME picks another runtime)")
    for col in ("target", "device", "runtimes (default first)", "format", "runs", "sampling", "opset", "notes"):
        table.add_column(col, overflow="fold")
    for t in shipped_targets:
        keys = [t.key] + [k for k in t.device.runtimes if k != t.key]
        runtimes = ", ".join(f"{k}: {t.device.runtimes[k].runtime}" for k in keys)
        notes = t.recipe.description + (f" (alias: {', '.join(by_recipe[t.name])})" if t.name in by_recipe else "")
        table.add_row(t.name, t.device.title, runtimes, t.settings["format"], t.precision, t.settings["sampling"],
                      str(t.settings["opset"]) if t.settings["format"] == "onnx" else "-", notes)
    console.print(table)


def target(console, t):
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


def verified(console, bundle, report, json_out):
    from .verify import rows

    title = f"verify {bundle}: {report['ran']} ({report['precision']}" + (
        f", ran {report['runtime_precision']}" if report.get("runtime_precision") else "") + ")"
    table = Table(title=title)
    for col in ("check", "value", "limit", "result"):
        table.add_column(col, justify="right" if col != "check" else "left")
    for name, value, limit, ok in rows(report):
        table.add_row(name, value, limit, "[green]pass[/green]" if ok else "[red]FAIL[/red]")
    console.print(table)
    if not report.get("raw_twin", True):
        _line(console, "before top-k: not checked here (this bundle carries no raw twin: --no-raw-twin)")
    if report["ok"]:
        _line(console, f"[green]verified[/green]: within the tolerances of {report['target'] or 'its precision'}; "
                       f"report {json_out}")
    else:
        _line(console, f"[red]FAILED[/red]: {escape('; '.join(report['broken']))}; report {json_out}")


def demo(console, s, source, save, json_out):
    table = Table(title=f"demo: {source} ({s['ended_by']})")
    for col in ("frames read", "processed", "dropped", "reconnects", "FPS", "inference ms mean / p50 / p95",
                "total ms mean / p50 / p95"):
        table.add_column(col, justify="right")

    def lat(k):
        return " / ".join(f"{s[k][q]:.1f}" for q in ("mean", "p50", "p95")) if k in s else "-"

    table.add_row(str(s["frames_read"]), str(s["frames_processed"]), str(s["frames_dropped"]), str(s["reconnects"]),
                  f"{s['fps']:.1f}", lat("inference_ms"), lat("total_ms"))
    console.print(table)
    for path, what in ((save, "video"), (json_out, "detections")):
        if path is not None and s["frames_processed"]:
            _line(console, f"{what}: {path}")


def benchmark(console, report, paths, batch, runs):
    from .benchmark import has_intervals, input_size, protocol, speedup_text, spread, spread_title

    cpu = report["cpu"]
    table = Table(title=f"{cpu['model']} ({cpu['cores']} cores; {', '.join(cpu['features']) or '-'}), batch {batch}, "
                        f"{runs} timed runs per model, {protocol(report)}")
    vs_first = "vs first [95%]" if has_intervals(report) else "vs first"
    for col in ("model", "input", "ran", "p50 ms", "p90 ms", "p99 ms", "FPS", "memory MB", vs_first,
                spread_title(report).replace(" ms", "")):
        table.add_column(col, justify="left" if col in ("model", "ran") else "right")
    for e in report["models"]:
        table.add_row(escape(e["name"]), input_size(e), escape(e["ran"]), f"{e['p50_ms']:.1f}", f"{e['p90_ms']:.1f}",
                      f"{e['p99_ms']:.1f}", f"{e['fps']:.1f}", f"{e['memory_mb']:.0f}",
                      speedup_text(e["speedup_vs_first"], e.get("speedup_vs_first_interval")), spread(e))
    console.print(table)
    if report.get("sizes_differ"):
        _line(console, f"[yellow]note:[/yellow] {escape(report['sizes_differ'])}")
    _line(console, f"report: {paths['json']}, {paths['md']}, {paths['png']}")


def parity(console, result, paths):
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
            _line(console, f"{escape(artifact_name(a))}: {escape(gate_text(a))}")
    _line(console, f"report: {paths['json']}, {paths['md']}, {paths['png']}")


def metrics(console, metrics_, title):
    from .cocoeval import METRICS

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for m in METRICS:
        table.add_row(m, f"{metrics_[m]:.4f}")
    for name, ap in metrics_["per_class"].items():
        table.add_row(f"AP {escape(name)}", f"{ap:.4f}")
    console.print(table)


class QuickstartReporter:
    """The quickstart's steps on stdout ("3/7 fine-tuned ..."), its progress bars on stderr, its parity table."""

    def __init__(self, steps_console, progress_console, steps_total):
        self.steps, self.console, self.total = steps_console, progress_console, steps_total

    def step(self, n, text):
        _line(self.steps, f"{n}/{self.total} {escape(text)}")

    def parity(self, report, paths):
        parity(self.steps, report, paths)


def qat_done(console, trainer, out):
    ptq = f"; PTQ baseline AP {trainer.ptq_metrics['AP']:.3f}" if trainer.ptq_metrics else ""
    _line(console, f"run folder {out}: last.pt, best.pt (INT8 fake-quant AP {trainer.best_ap:.3f}{ptq}), "
                   f"metrics.csv, metrics.png; export with `rtdetr-edge export --weights {out}/best.pt "
                   f"--precision int8`")
