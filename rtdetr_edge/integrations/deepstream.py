"""DeepStream (Gst-nvinfer): the nvinfer config, labels, our bbox parser + Makefile, a deepstream-app config.

The network's preprocessing as it really is (bundle.PREPROCESSING): RGB, pixels / 255, no mean, stretched to
the input size (maintain-aspect-ratio=0). No clustering (cluster-mode=4): a DETR's top-k has no duplicates
to suppress. The model's second input, orig_target_sizes, is filled once by the parser library
(NvDsInferInitializeInputLayers) with the network size, so boxes come out in network pixels and nvinfer
scales them to each frame.
"""

import shutil
from pathlib import Path

FILES = Path(__file__).parent / "device_files"
PARSER_FUNC = "NvDsInferParseCustomRTDETR"
PARSER_LIB = "libnvds_rtdetr_parser.so"

NETWORK_MODE = {"fp32": 0, "int8": 1, "fp16": 2}  # nvinfer's network-mode values
DYNAMIC_BATCH_MIN = (6, 1)  # nvinfer reads dynamic-batch engines from DeepStream 6.1


def infer_config(info, threshold=0.5) -> str:
    precision = info["precision"] if info["precision"] in NETWORK_MODE else "fp32"
    lines = [
        "# Gst-nvinfer config for this bundle (rtdetr-edge). Paths are relative to this file.",
        "# Build the engine first (../build_engine.sh): nvinfer then loads it instead of building its own",
        "# without the bundle's FP16 guards. Then: make (builds the parser), and point deepstream-app or",
        "# your pipeline's nvinfer at this file.",
        "[property]",
        "gpu-id=0",
        "# preprocessing: RGB, x / 255, no mean subtraction, stretched to the input size",
        f"net-scale-factor={1 / 255!r}",
        "offsets=0;0;0",
        "model-color-format=0",
        "maintain-aspect-ratio=0",
        f"onnx-file=../{info['artifact']}",
        f"model-engine-file=../{info['engine']}",
        "labelfile-path=labels.txt",
        f"infer-dims=3;{info['height']};{info['width']}",
        f"batch-size={info['max_batch']}",
        f"# {precision}: as the recipe built the engine",
        f"network-mode={NETWORK_MODE[precision]}",
        f"num-detected-classes={info['num_classes']}",
        "network-type=0",
        "process-mode=1",
        "gie-unique-id=1",
        "interval=0",
        "output-blob-names=labels;boxes;scores",
        "# a DETR needs no NMS: the parser hands nvinfer the model's own top-k",
        "cluster-mode=4",
        f"parse-bbox-func-name={PARSER_FUNC}",
        f"custom-lib-path={PARSER_LIB}",
        "",
        "[class-attrs-all]",
        f"pre-cluster-threshold={threshold}",
        f"topk={info['queries']}",
        "",
    ]
    return "\n".join(lines)


def app_config(info) -> str:
    """deepstream-app: one source (a file by default; a camera or an RTSP stream by the commented lines),
    this model as the primary detector, boxes drawn, shown on screen."""
    return "\n".join([
        "# deepstream-app -c deepstream_app_config.txt   (rtdetr-edge; build the engine and the parser first)",
        "[application]",
        "enable-perf-measurement=1",
        "perf-measurement-interval-sec=5",
        "",
        "[tiled-display]",
        "enable=0",
        "",
        "[source0]",
        "enable=1",
        "# type: 1 = V4L2 camera (camera-v4l2-dev-node=0), 2 = URI, 3 = multi-URI, 4 = RTSP (uri=rtsp://...)",
        "type=3",
        "uri=file:///opt/nvidia/deepstream/deepstream/samples/streams/sample_1080p_h264.mp4",
        "num-sources=1",
        "gpu-id=0",
        "",
        "[streammux]",
        "gpu-id=0",
        "live-source=0",
        "batch-size=1",
        "batched-push-timeout=40000",
        "width=1920",
        "height=1080",
        "enable-padding=0",
        "",
        "[primary-gie]",
        "enable=1",
        "gpu-id=0",
        "gie-unique-id=1",
        "nvbuf-memory-type=0",
        "config-file=config_infer_primary_rtdetr.txt",
        "",
        "[osd]",
        "enable=1",
        "gpu-id=0",
        "border-width=2",
        "text-size=14",
        "text-color=1;1;1;1",
        "text-bg-color=0.3;0.3;0.3;1",
        "font=Serif",
        "",
        "[sink0]",
        "enable=1",
        "# type: 1 = fakesink, 2 = EGL display, 3 = file (container=1 mp4, codec=1 h264, output-file=out.mp4)",
        "type=2",
        "sync=0",
        "gpu-id=0",
        "",
        "[tests]",
        "file-loop=0",
        "",
    ])


def write(folder, info, target) -> dict:
    version = target.device.runtimes[target.key].deepstream if target is not None else None
    if info["dynamic"] and version is not None and tuple(map(int, version.split(".")[:2])) < DYNAMIC_BATCH_MIN:
        from ..errors import UserError

        raise UserError(f"--integrations deepstream: DeepStream {version} (what {target.spec} ships) reads no "
                        f"dynamic-batch engines (6.1 and newer do); export with a fixed --batch; nothing was written")
    out = folder / "deepstream"
    out.mkdir()
    (out / "config_infer_primary_rtdetr.txt").write_text(infer_config(info))
    (out / "labels.txt").write_text("\n".join(info["class_names"]) + "\n")
    (out / "deepstream_app_config.txt").write_text(app_config(info))
    for name in ("nvdsparsebbox_rtdetr.cpp", "Makefile"):
        shutil.copyfile(FILES / name, out / name)
    entry = {"folder": "deepstream", "config": "deepstream/config_infer_primary_rtdetr.txt",
             "parser": {"library": PARSER_LIB, "function": PARSER_FUNC, "source": "deepstream/nvdsparsebbox_rtdetr.cpp"},
             "deepstream": version, "checked_on_device": False}
    return entry
