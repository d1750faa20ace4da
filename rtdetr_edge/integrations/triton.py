"""Triton Inference Server: a model repository for the bundle's model.

TensorRT targets serve the engine built on the device (platform tensorrt_plan), ONNX bundles the ONNX
(onnxruntime backend), OpenVINO bundles the IR (openvino backend). With a dynamic-batch bundle, Triton batches
requests (max_batch_size = the engine profile's largest batch, dims without the batch axis); with a fixed
batch, max_batch_size is 0 and the dims carry the batch. The model file is not copied into the bundle:
`fill_repository.sh` links (or copies) it into the version folder on the device.
"""

import shlex

# (platform or backend, model file name in the version folder, files of the bundle that make it up)
SERVING = {"tensorrt": ("platform", "tensorrt_plan", "model.plan"),
           "onnx": ("platform", "onnxruntime_onnx", "model.onnx"),
           "openvino": ("backend", "openvino", "model.xml")}
MODEL_NAME = "rtdetr"


def serving(info) -> tuple:
    return SERVING["tensorrt" if info["runtime"] == "tensorrt" else info["format"]]


def config_pbtxt(info) -> str:
    key, value, filename = serving(info)
    batch = info["max_batch"] if info["dynamic"] else 0
    lead = [] if info["dynamic"] else [info["max_batch"]]  # a fixed-batch model's dims include the batch
    int_type = "TYPE_INT64" if info["int_type"] == "int64" else "TYPE_INT32"
    q = info["queries"]
    gpu = info["runtime"] == "tensorrt"

    def tensor(name, dtype, dims):
        return f'  {{\n    name: "{name}"\n    data_type: {dtype}\n    dims: [ {", ".join(map(str, lead + dims))} ]\n  }}'

    lines = [
        f'name: "{MODEL_NAME}"',
        f'{key}: "{value}"',
        f'default_model_filename: "{filename}"',
        f"max_batch_size: {batch}",
        "input [",
        ",\n".join([tensor(info["inputs"][0], "TYPE_FP32", [3, info["height"], info["width"]]),
                    tensor(info["inputs"][1], int_type, [2])]),
        "]",
        "output [",
        ",\n".join([tensor("labels", int_type, [q]), tensor("boxes", "TYPE_FP32", [q, 4]),
                    tensor("scores", "TYPE_FP32", [q])]),
        "]",
        "instance_group [",
        f"  {{\n    count: 1\n    kind: {'KIND_GPU' if gpu else 'KIND_CPU'}\n  }}",
        "]",
    ]
    if info["dynamic"]:
        lines.append("dynamic_batching { }")
    return "\n".join(lines) + "\n"


def fill_script(info) -> str:
    """Links the model into the version folder (a hard link: no second copy on the device's disk; a copy
    where the file system refuses links)."""
    _, _, filename = serving(info)
    if info["runtime"] == "tensorrt":
        sources = [(info["engine"], filename)]
    elif info["format"] == "openvino":
        stem = info["artifact"].rsplit(".", 1)[0]
        sources = [(info["artifact"], "model.xml"), (stem + ".bin", "model.bin")]
    else:
        sources = [(info["artifact"], filename)]
    lines = ["#!/usr/bin/env bash",
             "# Put this bundle's model into the Triton model repository beside this script (rtdetr-edge).",
             "#   ./triton/fill_repository.sh && tritonserver --model-repository=$PWD/triton/model_repository",
             "set -euo pipefail",
             'here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
             'bundle="$(dirname "$here")"',
             f'version="$here/model_repository/{MODEL_NAME}/1"',
             'mkdir -p "$version"']
    for src, dst in sources:
        s, d = shlex.quote(src), shlex.quote(dst)
        if info["runtime"] == "tensorrt":
            lines.append(f'[ -f "$bundle"/{s} ] || {{ echo "build the engine first: ./build_engine.sh" >&2; exit 1; }}')
        lines.append(f'ln -f "$bundle"/{s} "$version"/{d} 2>/dev/null || cp -f "$bundle"/{s} "$version"/{d}')
    lines.append(f'echo "model repository: $here/model_repository ({MODEL_NAME}, version 1)"')
    return "\n".join(lines) + "\n"


def write(folder, info, target) -> dict:
    repo = folder / "triton" / "model_repository" / MODEL_NAME
    repo.mkdir(parents=True)
    (repo / "config.pbtxt").write_text(config_pbtxt(info))
    script = folder / "triton" / "fill_repository.sh"
    script.write_text(fill_script(info))
    script.chmod(0o755)
    key, value, filename = serving(info)
    return {"folder": "triton", "config": f"triton/model_repository/{MODEL_NAME}/config.pbtxt", key: value,
            "model_file": f"{MODEL_NAME}/1/{filename}", "fill": "triton/fill_repository.sh",
            "max_batch_size": info["max_batch"] if info["dynamic"] else 0, "checked_on_device": False}
