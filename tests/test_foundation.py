"""The foundation the edge features plug into: no import circle between export and parity, registries
instead of if/else chains, an export configuration built in layers, validated tolerances, and the runtime
behaviours a device relies on (fixed-batch chunking, OpenVINO's precision hint)."""

import ast
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rtdetr_edge import UserError

PKG = Path(__file__).parent.parent / "rtdetr_edge"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in PKG.rglob("*.py")}


def _imports(path: Path) -> set:
    """The rtdetr_edge modules a file imports anywhere (top level or inside functions)."""
    here = _module(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                mod = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:  # `from .x import y`: y is a module, or a name of module x
                out.add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in MODULES and m != here}


def import_circles(graph) -> list:
    """The strongly connected groups of more than one module (Tarjan): each is an import circle."""
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle_anywhere_in_the_package():
    """Every import, top level or inside a function, counts: a circle hidden in a function is still two
    modules that cannot be understood (or moved) one without the other."""
    graph = {m: _imports(p) for m, p in MODULES.items()}
    assert len(graph) > 40 and "rtdetr_edge.export.plan" in graph["rtdetr_edge.export"]
    assert import_circles(graph) == []
    # the detector finds a circle when there is one (bundle -> fsutil -> bundle, as there once was)
    assert import_circles({**graph, "rtdetr_edge.fsutil": graph["rtdetr_edge.fsutil"] | {"rtdetr_edge.bundle"}}) \
        == [["rtdetr_edge.bundle", "rtdetr_edge.fsutil"]]
    # the comparisons export and parity both use live in a neutral module that imports neither
    assert not any(m.startswith(("rtdetr_edge.export", "rtdetr_edge.parity")) for m in graph["rtdetr_edge.compare"])


def test_device_side_modules_never_import_torch_at_top_level():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import rtdetr_edge, rtdetr_edge.runtime, rtdetr_edge.bundle, rtdetr_edge.parity, rtdetr_edge.compare, "
            "rtdetr_edge.predict, rtdetr_edge.preprocess, rtdetr_edge.cocoeval, rtdetr_edge.cli, rtdetr_edge.targets, "
            "rtdetr_edge.verify, rtdetr_edge.demo, rtdetr_edge.benchmark, rtdetr_edge.vocab, rtdetr_edge.paths\n"
            "from rtdetr_edge.runtime.base import BACKENDS, backend_class\n"
            "[backend_class(b) for b in BACKENDS if b != 'torch']\n"
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_format_registry_states_what_each_format_supports():
    from rtdetr_edge.export import FORMATS, ExportConfig, writer

    for name, fmt in FORMATS.items():
        assert callable(writer(name)) and fmt.default_sampling in fmt.samplings and fmt.precisions
        ExportConfig(format=name).validate()
    # anything a format does not state is refused by lookup, with the format's own reason where it has one
    for fmt, precision, expect in [("tflite", "bf16", "not offered for tflite"),
                                   ("openvino", "bf16", "not offered for openvino"),
                                   ("onnx", "fp16", "ONNX FP16"), ("onnx", "bf16", "not offered for onnx")]:
        with pytest.raises(UserError, match=expect):
            ExportConfig(format=fmt, precision=precision).validate()
    with pytest.raises(UserError, match="--format"):
        ExportConfig(format="caffe").validate()
    with pytest.raises(UserError, match="--sampling"):
        ExportConfig(sampling="nearest").validate()
    with pytest.raises(UserError, match="--opset"):
        ExportConfig(opset=12).validate()
    with pytest.raises(UserError, match="GridSample needs opset 16"):
        ExportConfig(opset=13).validate()
    ExportConfig(opset=13, sampling="gather").validate()  # TensorRT 8.2's opset: the gather sampler


def test_runtime_registry_loads_backends_lazily():
    from rtdetr_edge.runtime.base import BACKEND_BY_SUFFIX, BACKENDS, backend_class

    assert set(BACKEND_BY_SUFFIX.values()) <= set(BACKENDS)
    for name in BACKENDS:
        assert backend_class(name).backend == name
    with pytest.raises(UserError, match="unknown backend"):
        backend_class("caffe")


def test_export_config_layers_say_what_won():
    from rtdetr_edge.export import ExportConfig

    cfg, origin = ExportConfig.resolve(recipe={"format": "openvino", "precision": "fp16", "batch": 4},
                                       cli={"precision": None, "batch": 2, "weights": "w.pt"})
    assert (cfg.format, cfg.precision, cfg.batch, cfg.sampling) == ("openvino", "fp16", 2, "grid_sample")
    assert origin == {"format": "recipe", "precision": "recipe", "batch": "cli", "weights": "cli"}
    with pytest.raises(UserError, match="recipe: unknown export setting 'precison'"):
        ExportConfig.resolve(recipe={"precison": "fp16"})
    with pytest.raises(UserError, match="exclude each other"):
        ExportConfig.resolve(cli={"batch": 2, "dynamic_batch": True})


def test_tolerances_are_validated_and_nan_fails_the_gate():
    from rtdetr_edge.compare import check, parse_tolerances, tolerances_for

    assert parse_tolerances(["top100_match_min=0.99", "raw_score_max=1e-3"]) == {"top100_match_min": 0.99,
                                                                                  "raw_score_max": 1e-3}
    for bad, expect in [("foo=1", "unknown tolerance 'foo'"), ("raw_score_max", "KEY=VALUE"),
                        ("raw_score_max=abc", "not a number"), ("raw_score_max=nan", "finite"),
                        ("top100_match_min=1.5", "between 0 and 1"), ("ap_drop_max=-1", ">= 0")]:
        with pytest.raises(UserError, match=expect):
            parse_tolerances([bad])
    with pytest.raises(UserError, match="no parity tolerances for precision 'bf16'"):
        tolerances_for("bf16")
    tol = tolerances_for("fp32", {"top100_match_min": 0.99})
    assert check({"top100_match": 0.98}, tol) == ["top100_match 0.9800 < 0.99"]  # a minimum, not a maximum
    assert check({"top100_match": 0.995}, tol) == []
    assert check({"raw_score_max": math.nan}, tol) == ["raw_score_max is NaN"]
    assert check({"ap_drop": math.nan}, tol) == ["ap_drop is NaN"]


def test_parity_cli_refuses_an_unknown_tolerance(bundles, tmp_path):
    r = subprocess.run([sys.executable, "-m", "rtdetr_edge.cli", "parity", "--model", str(bundles["onnx"]),
                        "--tol", "raw_scor_max=1", "--report", str(tmp_path / "r")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "unknown tolerance 'raw_scor_max'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()


def test_fixed_batch_artifact_runs_any_number_of_images(bundles):
    from rtdetr_edge.runtime import load_runtime

    rt = load_runtime(bundles["openvino"])  # exported for batch 2
    assert rt.batch == 2
    x = np.random.default_rng(1).random((3, 3, 128, 128), dtype=np.float32)
    sizes = np.array([[128, 128], [256, 64], [640, 480]])
    labels, boxes, scores = rt.infer(x, sizes)  # a chunk of 2, then 1 padded to 2
    assert labels.shape == (3, 300) and boxes.shape == (3, 300, 4)
    for i in range(3):
        one = rt.infer(x[i:i + 1], sizes[i:i + 1])
        assert np.array_equal(one[0][0], labels[i]) and np.allclose(one[2][0], scores[i], atol=1e-6)
        assert np.allclose(one[1][0], boxes[i], atol=1e-3)


def test_openvino_precision_hint_comes_from_the_bundle(bundles):
    from rtdetr_edge.runtime import load_runtime

    import openvino as ov

    fp32, fp16 = load_runtime(bundles["openvino"]), load_runtime(bundles["openvino16"])
    assert fp32.hint == "f32" and fp32.effective_precision == "f32"  # never a silent bf16
    has_fp16 = "FP16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    # OpenVINO would turn an f16 hint into bf16 on CPUs with AVX512-BF16 but no FP16 arithmetic: not silently
    assert (fp16.hint, fp16.effective_precision) == (("f16", "f16") if has_fp16 else ("f32", "f32"))
    has_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    explicit = load_runtime(bundles["openvino16"], precision_hint="bf16")  # asked for: then it is bf16
    assert explicit.effective_precision == ("bf16" if has_bf16 else "f32")


def test_parity_with_data_reports_ap_and_its_drop(bundles, weights, tmp_path):
    from rtdetr_edge.data.synth import generate
    from rtdetr_edge.parity import parity

    data = generate(tmp_path / "d", 1, 3, 128, seed=5)
    report = parity([bundles["onnx"]], weights, data)
    m = report["artifacts"][0]["metrics"]
    assert {"AP", "AP50", "torch_AP", "torch_AP50", "ap_drop"} <= set(m)
    assert m["ap_drop"] == pytest.approx(m["torch_AP"] - m["AP"]) and abs(m["ap_drop"]) <= 0.002
    assert report["ok"]


def test_onnx_opset_is_a_choice(r18_small, tmp_path):
    import onnx

    from rtdetr_edge.export import ExportConfig, write_artifact

    cfg, _ = ExportConfig.resolve(cli={"format": "onnx", "opset": 18, "simplifier": "none"})
    facts = write_artifact(r18_small, cfg, tmp_path, raw=True)
    assert facts["opset"] == 18 and onnx.load(str(tmp_path / "model.onnx")).opset_import[0].version == 18


def test_a_query_swapped_at_the_topk_boundary_is_counted_not_compared():
    from rtdetr_edge.compare import check, compare_raw, tolerances_for

    rng = np.random.default_rng(0)
    scores, boxes = rng.random((1, 300, 6)), rng.random((1, 300, 4))
    art_s, art_b = scores + 2e-5, boxes.copy()
    art_s[0, 299], art_b[0, 299] = rng.random(6), rng.random(4)  # another query came in at the boundary
    m = compare_raw(scores, boxes, art_s, art_b)
    assert m["queries_swapped"] == pytest.approx(1 / 300) and m["raw_score_max"] == pytest.approx(2e-5)
    tol = tolerances_for("fp32")
    assert check({**m, "topk_score_max": 5e-4}, tol) == []  # widened 10x while queries were swapped
    assert check({**m, "queries_swapped": 0.0, "topk_score_max": 5e-4}, tol) == ["topk_score_max 0.0005 > 0.0001"]
    assert check({"queries_swapped": 0.2}, tol) == ["queries_swapped 0.2 > 0.05"]
