"""OpenVINO IR through OpenVINO's own converter (from the checked ONNX graph).

FP16 is stored as compressed (FP16) weights; the precision a CPU computes in is a runtime hint, which
our OpenVINO runtime always sets explicitly from the bundle (this CPU family may otherwise pick bf16).
"""

from pathlib import Path


def export_openvino(onnx_path, xml_path, precision="fp32") -> dict:
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(xml_path), compress_to_fp16=(precision == "fp16"))
    return {"converter": f"openvino {ov.__version__}", "weights": Path(xml_path).with_suffix(".bin").name,
            "compressed_to_fp16": precision == "fp16"}
