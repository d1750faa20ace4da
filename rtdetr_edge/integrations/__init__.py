"""What a bundle needs to drop into DeepStream, Triton and ROS 2 (Isaac ROS) without hand-written glue.

`export --target ... --integrations deepstream,triton,ros2` (default: the recipe's `integrations:`) adds to
the bundle, before its manifest is sealed:

- deepstream/: an nvinfer config (our preprocessing, batch, precision, no clustering), the labels, a C++
  bounding-box parser + input initialiser for our outputs with its Makefile, and a deepstream-app config;
- triton/: a model repository (config.pbtxt; the model goes into its version folder on the device by
  `fill_repository.sh`, as a hard link, so the bundle does not carry the network twice);
- ros2/: a launch file for NVIDIA Isaac ROS's RT-DETR nodes (isaac_ros_rtdetr) with our engine and sizes.

Every value rendered into these files is a number, a name from vocab, a validated class name or a file name
we chose; class names are checked before they reach a labels file. Built and checked here (the parser
compiles against DeepStream's headers and reproduces the Python post-processing; config.pbtxt parses with
Triton's schema), not yet run on a Jetson.
"""

from pathlib import Path

from ..errors import UserError
from ..vocab import INTEGRATIONS


def parse_integrations(value) -> tuple:
    """'deepstream,triton' / ['ros2'] / 'none' -> a tuple of known names (UserError naming the unknown)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))
    if names == ("none",):
        return ()
    unknown = [n for n in names if n not in INTEGRATIONS]
    if unknown:
        raise UserError(f"--integrations: unknown {', '.join(map(repr, unknown))} (known: "
                        f"{', '.join(INTEGRATIONS)}, or none)")
    return names


def check_integrations(names, fmt: str, runtime: str) -> None:
    """Refuse what cannot work, before anything is exported: DeepStream and Isaac ROS run TensorRT engines;
    Triton serves TensorRT plans, ONNX (onnxruntime backend) and OpenVINO IR, not TFLite."""
    for name in names or ():
        if name in ("deepstream", "ros2") and runtime != "tensorrt":
            runs = f"this target runs {runtime}" if runtime else "give --target with a Jetson"
            raise UserError(f"--integrations {name}: needs a TensorRT target (a Jetson); {runs}")
        if name == "triton" and fmt == "tflite":
            raise UserError("--integrations triton: Triton has no TFLite backend; export ONNX or OpenVINO for it")


def safe_class_names(names) -> list:
    """Class names go into labels files one per line: no line breaks or control characters."""
    for k, n in enumerate(names):
        if not isinstance(n, str) or not n or not n.isprintable() or len(n) > 200:
            raise UserError(f"class_names[{k}]: {n!r} cannot be written to a labels file (printable, one line, "
                            f"1-200 characters)")
    return list(names)


def write_integrations(folder, names, target, manifest, golden) -> dict:
    """Write each integration's files into the bundle folder; returns the manifest's `integrations` entry."""
    from . import deepstream, ros2, triton

    writers = {"deepstream": deepstream.write, "triton": triton.write, "ros2": ros2.write}
    folder = Path(folder)
    info = _model_info(manifest, golden, target)
    entry = {name: writers[name](folder, info, target) for name in names}
    readme = folder / "README.md"
    text = readme.read_text() if readme.exists() else f"# {manifest['variant']} bundle ({manifest['format']})\n"
    readme.write_text(text.rstrip("\n") + "\n\n" + readme_section(names, info) + "\n")
    return entry


HOWTO = {
    "deepstream": [
        "### DeepStream (deepstream/)",
        "```",
        "./build_engine.sh                 # the engine nvinfer loads (with this bundle's FP16 guards)",
        "cd deepstream && make             # libnvds_rtdetr_parser.so, against the DeepStream headers here",
        "deepstream-app -c deepstream_app_config.txt",
        "```",
        "`config_infer_primary_rtdetr.txt` is the nvinfer config for your own pipeline: RGB / 255, stretched, no "
        "clustering (`cluster-mode=4`), parser `NvDsInferParseCustomRTDETR`; the same library fills the model's "
        "`orig_target_sizes` input with the network size. Edit `[source0]` for a camera (type=1) or RTSP (type=4).",
    ],
    "triton": [
        "### Triton (triton/)",
        "```",
        "./triton/fill_repository.sh       # links the model (the engine on a Jetson) into model_repository/rtdetr/1",
        "tritonserver --model-repository=$PWD/triton/model_repository",
        "```",
        "Inputs `images` (float32 RGB / 255, NCHW) and `orig_target_sizes` (width, height); outputs `labels`, "
        "`boxes` (xyxy in the pixels of orig_target_sizes), `scores`.",
    ],
    "ros2": [
        "### ROS 2 / Isaac ROS (ros2/)",
        "```",
        "ros2 launch ros2/rtdetr_edge.launch.py camera_width:=1920 camera_height:=1080",
        "```",
        "Runs Isaac ROS's RT-DETR nodes (`isaac_ros_rtdetr`, `isaac_ros_tensor_rt`) on this bundle's engine; "
        "subscribes `image_rect`/`camera_info_rect`, publishes `detections_output` (vision_msgs/Detection2DArray). "
        "Isaac's preprocessing letterboxes; this model was trained on stretched images.",
    ],
}


def readme_section(names, info) -> str:
    lines = ["## Serving it", "",
             "Generated by rtdetr-edge and checked by its tests on a PC (nvinfer's key list, the parser built "
             "against DeepStream's headers and compared with the Python post-processing, config.pbtxt parsed "
             "with Triton's schema); not yet run on a device by us.", ""]
    for name in names:
        lines += HOWTO[name] + [""]
    return "\n".join(lines)


def _model_info(manifest, golden, target) -> dict:
    """What every integration renders, read once from the bundle's own facts."""
    from ..vocab import INPUT_IMAGES, INPUT_SIZES

    h, w = manifest["input"]["imgsz"]
    dynamic = manifest["input"]["batch"] == "dynamic"
    trt = target is not None and target.runtime.runtime == "tensorrt"
    # TensorRT 8.x turns int64 bindings into int32; 10.x and the CPU runtimes keep int64
    int64 = not trt or int(target.runtime.version.split(".")[0]) >= 10
    from ..export.jetson import ENGINE, MAX_BATCH

    return {"width": w, "height": h, "dynamic": dynamic, "max_batch": MAX_BATCH if dynamic else
            manifest["input"]["batch"], "queries": int(golden["scores"].shape[1]),
            "num_classes": manifest["num_classes"], "class_names": safe_class_names(manifest["class_names"]),
            "artifact": manifest["artifact"], "format": manifest["format"], "engine": ENGINE if trt else None,
            "precision": target.precision if target is not None else manifest["precision"],
            "int_type": "int64" if int64 else "int32", "inputs": (INPUT_IMAGES, INPUT_SIZES),
            "runtime": target.runtime.runtime if target is not None else manifest["format"]}
