"""What a TensorRT (Jetson) bundle carries beside the ONNX: the engine build for the device's TensorRT.

- `build_engine.sh`: trtexec with exactly the flags that TensorRT version has (workspace flag, --noTF32,
  --fp16, layer precisions where trtexec can set them, DLA with GPU fallback, a timing cache). Where the
  FP32 guard for written-out LayerNorm is needed and that trtexec cannot pin layers (8.2), it runs
  build_engine.py instead and says so.
- `build_engine.py`: the same build with TensorRT's Python API (tensor-name API, 8.5-10.x; 8.2 fallbacks).
- `engine_config.json`: the recipe's engine settings both read.
- `run_golden.sh` + `golden/*.bin`: trtexec runs the engine on the golden inputs and writes its outputs
  (`golden_outputs.json`), which `rtdetr-edge verify BUNDLE --outputs golden_outputs.json` checks on any
  machine: the route for JetPacks whose Python cannot install rtdetr-edge (4.6: 3.6, 5.1: 3.8).
- `README.md`: copy, build, verify, run the demo.
"""

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
from ..vocab import INPUT_IMAGES, INPUT_SIZES

ENGINE = "model.engine"
MAX_BATCH = 8  # the largest batch a dynamic-batch engine is built for (its optimisation profile: 1 / 1 / 8)
TIMING_CACHE = "timing.cache"
LAYERNORM_OPS = ("ReduceMean", "Sub", "Pow", "Add", "Sqrt", "Div", "Mul")


def layernorm_scopes(model) -> list:
    """ONNX name scopes of the model's LayerNorm modules, as the TorchScript exporter names them
    ('/model/decoder/decoder/layers.0/norm1'): the nodes below them are one written-out LayerNorm."""
    import torch.nn as nn

    scopes = []
    for name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm):
            parts = []
            for p in name.split("."):
                if p.isdigit() and parts:
                    parts[-1] += "." + p
                else:
                    parts.append(p)
            scopes.append("/model/" + "/".join(parts))
    return scopes


def fp32_nodes(onnx_path, scopes) -> list:
    """Names of the written-out LayerNorm nodes in the ONNX graph (none when LayerNormalization is native)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    if any(n.op_type == "LayerNormalization" for n in graph.node):
        return []
    return [n.name for n in graph.node if n.op_type in LAYERNORM_OPS
            and any(n.name.startswith(s + "/") for s in scopes)]


def shape_profile(imgsz) -> dict:
    """min / opt / max input shapes of a dynamic-batch engine."""
    h, w = imgsz
    return {k: {INPUT_IMAGES: [b, 3, h, w], INPUT_SIZES: [b, 2]}
            for k, b in (("min", 1), ("opt", 1), ("max", MAX_BATCH))}


def trtexec_command(target, onnx_file, fp32_layers, imgsz=None, dynamic=False) -> list:
    """The trtexec arguments for this target's TensorRT version (a list; the script quotes them)."""
    flags = target.runtime.trtexec
    s = target.settings
    cmd = ["trtexec", f"--onnx={onnx_file}", f"--saveEngine={ENGINE}", f"--timingCacheFile={TIMING_CACHE}",
           flags.workspace.format(mb=s.get("workspace_mb") or 1024), flags.build_only]
    if dynamic:  # all three, or TensorRT refuses the profile
        for k, shapes in shape_profile(imgsz).items():
            cmd.append(f"--{k}Shapes=" + ",".join(f"{n}:{'x'.join(map(str, d))}" for n, d in shapes.items()))
    if target.precision in ("fp16", "int8"):  # INT8: a Q/DQ ONNX; layers outside the Q/DQ pairs run FP16
        cmd.append("--fp16")
    if target.precision == "int8":
        cmd.append("--int8")
    if target.device.tf32 and "no_tf32" in target.guards and flags.no_tf32:
        cmd.append(flags.no_tf32)
    if fp32_layers and target.precision in ("fp16", "int8"):
        spec = ",".join(f"{n}:fp32" for n in fp32_layers)
        cmd += flags.layer_precisions.format(spec=spec).split(" ")
    if s.get("dla"):
        cmd += ["--useDLACore=0", "--allowGPUFallback"]
    return cmd


def needs_python_builder(target, fp32_layers) -> bool:
    return bool(fp32_layers) and target.precision in ("fp16", "int8") and target.runtime.trtexec.layer_precisions is None


def one_line(text) -> str:
    """Text from a device or runtime file, made safe for a comment or a Markdown line: printable, one line.
    (The schemas already refuse control characters; this holds even for a Target built in code.)"""
    return "".join(c if c.isprintable() else " " for c in str(text))


def build_script(target, onnx_file, fp32_layers, imgsz=None, dynamic=False) -> str:
    """build_engine.sh: every argument quoted for the shell (shlex.quote); titles only in comments."""
    r, d = target.runtime, target.device
    head = ["#!/usr/bin/env bash",
            f"# Build the TensorRT engine for {one_line(d.title)}, {one_line(d.runtimes[target.key].label)} "
            f"(TensorRT {one_line(r.version)}).",
            f"# Written by rtdetr-edge export --target {one_line(target.spec)}: flags valid for trtexec "
            f"{one_line(r.version)}.",
            "set -euo pipefail", 'cd "$(dirname "$0")"',
            'TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"']
    if needs_python_builder(target, fp32_layers):
        body = [f"# trtexec {one_line(r.version)} cannot pin layer precisions (no --layerPrecisions), and the written-out",
                "# LayerNorm must stay FP32 under FP16: the Python builder does the same build with that guard.",
                'exec python3 build_engine.py "$@"']
    else:
        cmd = trtexec_command(target, onnx_file, fp32_layers, imgsz, dynamic)
        body = ['"$TRTEXEC" \\'] + [f"  {shlex.quote(a)} \\" for a in cmd[1:]] + ['  "$@"',
                                                                                f'echo "engine: $(pwd)/{ENGINE}"']
    return "\n".join(head + body) + "\n"


def golden_run_script(target, input_names) -> str:
    loads = shlex.quote(",".join(f"{n}:golden/{n}.bin" for n in input_names))
    return "\n".join([
        "#!/usr/bin/env bash",
        "# Run the built engine on the bundle's golden inputs with trtexec and keep its outputs; then, on any",
        "# machine with rtdetr-edge: rtdetr-edge verify . --outputs golden_outputs.json",
        "set -euo pipefail", 'cd "$(dirname "$0")"',
        'TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"',
        f'"$TRTEXEC" --loadEngine={ENGINE} --loadInputs={loads} --exportOutput=golden_outputs.json '
        "--iterations=1 --warmUp=0 --duration=0 \"$@\"",
        'echo "outputs: $(pwd)/golden_outputs.json"']) + "\n"


def _python_at_least(version, wanted) -> bool:
    """'3.8' -> False for (3, 10); unknown or a range ('>=3.10') counts as enough."""
    try:
        return tuple(int(p) for p in str(version).split(".")[:2]) >= wanted
    except ValueError:
        return True


def readme(target, manifest) -> str:
    d, r = target.device, target.runtime
    rt = d.runtimes[target.key]
    py_ok = _python_at_least(rt.python, (3, 10))
    lines = [f"# {manifest['variant']} for {one_line(d.title)}", "",
             f"Target `{one_line(target.spec)}`: {one_line(rt.label)}, TensorRT {one_line(r.version)}, CUDA "
             f"{one_line(rt.cuda)}, Python {one_line(rt.python)}. "
             f"Engine precision **{target.precision}**; ONNX opset {manifest['converter']['opset']}, sampling "
             f"{manifest['sampling']}, input {manifest['input']['imgsz'][0]}x{manifest['input']['imgsz'][1]}, "
             f"batch {manifest['input']['batch']}.", "",
             "## 1. Copy the bundle", "", "```", f"scp -r {Path(manifest['export_config']['out']).name} "
             "user@jetson:~/", "```", "",
             "## 2. Build the engine (on the Jetson: engines are tied to the GPU and TensorRT version)", "",
             "```", "./build_engine.sh          # trtexec, flags for this TensorRT version",
             "python3 build_engine.py    # the same with the TensorRT Python API", "```", "",
             "## 3. Verify before trusting it", ""]
    if py_ok:
        lines += ["With rtdetr-edge on the device (no PyTorch needed: `pip install 'rtdetr-edge[tensorrt]'`, "
                  "TensorRT from JetPack):", "", "```", "rtdetr-edge verify . --engine model.engine", "```", ""]
    lines += [f"Where rtdetr-edge cannot be installed (its Python needs >= 3.10; this JetPack has {rt.python}), "
              "run the engine on the golden inputs with trtexec and check the outputs on any machine:"
              if not py_ok else "Or with trtexec alone, checking the outputs on any machine:", "",
              "```", "./run_golden.sh", "rtdetr-edge verify . --outputs golden_outputs.json   # exit 0: within the "
              "recipe's tolerances", "```", "",
              "## 4. Run the demo", "", "```",
              "rtdetr-edge demo --model model.engine --source csi://0       # or 0, video.mp4, rtsp://...",
              "rtdetr-edge benchmark --model model.engine", "```", "",
              "## Guards this bundle applies", ""]
    for p in d.pitfalls:
        lines.append(f"- **{one_line(p.id)}** ({p.guard}): {one_line(p.text)}")
    for note in r.notes:
        lines.append(f"- {one_line(note)}")
    return "\n".join(lines) + "\n"


def write_device_files(folder, model, target, manifest, golden) -> dict:
    """Write the TensorRT files into the bundle folder (before its manifest is sealed); returns the
    manifest's `engine` entry."""
    folder = Path(folder)
    onnx_file = manifest["artifact"]
    scopes = layernorm_scopes(model)
    layers = fp32_nodes(folder / onnx_file, scopes) if "layernorm_fp32" in target.guards else []
    s = target.settings
    dynamic = manifest["input"]["batch"] == "dynamic"
    imgsz = manifest["input"]["imgsz"]
    cfg = {"onnx": onnx_file, "engine": ENGINE, "precision": target.precision,
           "workspace_mb": s.get("workspace_mb") or 1024, "tf32": not ("no_tf32" in target.guards),
           "fp32_layer_scopes": scopes if layers else [], "dla_core": 0 if s.get("dla") else None,
           "timing_cache": TIMING_CACHE, "tensorrt": target.runtime.version,
           "profile": shape_profile(manifest["input"]["imgsz"]) if dynamic else None}
    (folder / "engine_config.json").write_text(json.dumps(cfg, indent=2))
    for name, text in (("build_engine.sh", build_script(target, onnx_file, layers, imgsz, dynamic)),
                       ("run_golden.sh", golden_run_script(target, manifest["input"]["names"]))):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    shutil.copyfile(Path(__file__).parent / "device_files" / "build_engine.py", folder / "build_engine.py")
    (folder / "build_engine.py").chmod(0o755)
    # golden inputs as trtexec reads them: raw little-endian of the engine's input types (TensorRT 8.x
    # turns int64 inputs into int32; 10.x keeps int64)
    (folder / "golden").mkdir(exist_ok=True)
    from ..bundle import golden_inputs

    x, sizes = golden_inputs(golden)
    int_type = np.int64 if int(target.runtime.version.split(".")[0]) >= 10 else np.int32
    np.ascontiguousarray(x, dtype="<f4").tofile(folder / "golden" / "images.bin")
    np.ascontiguousarray(sizes, dtype=np.dtype(int_type).newbyteorder("<")).tofile(
        folder / "golden" / "orig_target_sizes.bin")
    (folder / "README.md").write_text(readme(target, manifest))
    return {"file": ENGINE, "built_on_device": True, "precision": target.precision,
            "build": ["build_engine.sh", "build_engine.py"], "fp32_layers": len(layers),
            "trtexec": None if needs_python_builder(target, layers) else trtexec_command(target, onnx_file, layers,
                                                                                        imgsz, dynamic),
            "shapes": shape_profile(imgsz) if dynamic else "static",
            "golden_run": "run_golden.sh"}
