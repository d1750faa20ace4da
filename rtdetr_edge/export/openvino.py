"""OpenVINO IR through OpenVINO's own converter (from the checked ONNX graph).

FP16 is stored as compressed (FP16) weights; the precision a CPU computes in is a runtime hint, which
our OpenVINO runtime always sets explicitly from the bundle (this CPU family may otherwise pick bf16).
"""

from pathlib import Path


def write(module, path, example_inputs, cfg, raw=False) -> dict:
    """The format registry's entry point: ONNX first (checked, simplified), then OpenVINO IR at `path`."""
    from .onnx import write as write_onnx

    from ..fsutil import scratch

    with scratch(path) as tmp:
        onnx_path = tmp / "model.onnx"
        facts = write_onnx(module, onnx_path, example_inputs, cfg, raw=raw)
        facts.update(export_openvino(onnx_path, path, cfg.precision))
    return facts


def export_openvino(onnx_path, xml_path, precision="fp32") -> dict:
    import openvino as ov

    if precision not in ("fp32", "fp16", "int8"):  # int8: a Q/DQ ONNX, read as FakeQuantize (int8 kernels)
        raise ValueError(f"openvino: no writer for precision {precision!r}")
    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(xml_path), compress_to_fp16=(precision == "fp16"))
    return {"converter": f"openvino {ov.__version__}", "weights": Path(xml_path).with_suffix(".bin").name,
            "compressed_to_fp16": precision == "fp16"}
