"""Which distribution, in which extra of pyproject.toml, brings each module we import -- the one source for
the "missing extra" message and for the test that checks pyproject declares everything we import
(tests/test_extras.py reads pyproject.toml and this table together)."""

# the core install (the device side): import name -> distribution
CORE = {"numpy": "numpy", "scipy": "scipy", "cv2": "opencv-python-headless", "typer": "typer", "rich": "rich",
        "matplotlib": "matplotlib", "pydantic": "pydantic", "yaml": "pyyaml"}

# optional: import name -> (what to call it, the extra that brings it, its distribution)
OPTIONAL = {
    "torch": ("PyTorch", "train", "torch"),
    "faster_coco_eval": ("faster-coco-eval", "coco", "faster-coco-eval"),
    "onnx": ("onnx", "export", "onnx"),
    "onnxslim": ("onnxslim", "export", "onnxslim"),
    "onnxsim": ("onnxsim", "export", "onnxsim"),
    "litert_torch": ("litert-torch", "export", "litert-torch"),
    "ai_edge_quantizer": ("ai-edge-quantizer", "export", "ai-edge-quantizer"),
    "onnxruntime": ("onnxruntime", "onnx", "onnxruntime"),
    "openvino": ("OpenVINO", "openvino", "openvino"),
    "ai_edge_litert": ("ai-edge-litert", "tflite", "ai-edge-litert"),
    "modelopt": ("nvidia-modelopt", "quant", "nvidia-modelopt"),
    "cuda": ("cuda-python", "tensorrt", "cuda-python"),
}
# what no extra can bring: TensorRT comes with JetPack (or NVIDIA's own wheel on x86); tflite_runtime is the
# older TFLite interpreter a device may have instead of ai-edge-litert
EXTERNAL = {"tensorrt": "TensorRT comes with JetPack on a Jetson (pip install tensorrt on an x86 machine with "
                        "an NVIDIA GPU)",
            "tflite_runtime": "the older TFLite interpreter (ai-edge-litert replaces it: "
                              "pip install 'rtdetr-edge[tflite]')"}


def missing_message(module: str):
    """The one line for a missing module, or None when it is not one of ours to name. Plain text: no
    markup (the extra's name is in square brackets)."""
    top = (module or "").split(".")[0]
    if top in OPTIONAL:
        what, extra, _ = OPTIONAL[top]
        tail = " (a bundle runs without it)" if top == "torch" else ""
        return f"{what} is not installed here; this needs pip install 'rtdetr-edge[{extra}]'{tail}"
    if top in EXTERNAL:
        return f"{top} is not installed here: {EXTERNAL[top]}"
    return None
