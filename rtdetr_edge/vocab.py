"""The project's words, defined once: precisions, formats, samplings, simplifiers, INT8 forms, the ONNX
opset range, and the deployed model's input and output names.

Every other module imports these (the export registry, the target schemas, the runtimes, verify and
parity), so a new precision or a renamed output is one edit here. Device side: no imports at all.
"""

# what an artifact can be stored as, and what a device can run (bf16 is a CPU runtime's choice, never
# an export precision: an OpenVINO CPU with AVX512-BF16 runs an fp32 IR in bf16 unless told otherwise)
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
EXPORT_PRECISIONS = ("fp32", "fp16", "int8")
FORMATS = ("onnx", "openvino", "tflite")
# deformable attention's sampling: bilinear GridSample, the same bilinear math through gathers (runtimes
# without GridSample), and the authors' discrete (nearest) sampling -- an explicit option, never a fallback
SAMPLINGS = ("grid_sample", "gather", "discrete")
SIMPLIFIERS = ("onnxslim", "onnxsim", "none")
# INT8 artifact forms: Q/DQ with int8 activations (TensorRT, OpenVINO), onnxruntime's U8S8, TFLite static
INT8_FORMS = ("s8s8", "u8s8", "static")
INT8_FLOATS = ("f32", "bf16")  # an OpenVINO INT8 file's float layers (--int8-float)
INT8_FORMS_OF_FORMAT = {"onnx": ("s8s8", "u8s8"), "openvino": ("s8s8",), "tflite": ("static",)}
# serving stacks a bundle can carry files for (rtdetr_edge/integrations)
INTEGRATIONS = ("deepstream", "triton", "ros2")
# ONNX opsets we write: 13 is the first with per-channel Q/DQ and the oldest a shipped runtime needs
# (TensorRT 8.2); GridSample needs 16
OPSET_MIN, OPSET_MAX, OPSET_DEFAULT = 13, 21, 17
GRIDSAMPLE_MIN_OPSET = 16

# the deployed model (the authors' interface): images + original sizes in, top-k detections out
INPUT_IMAGES, INPUT_SIZES = "images", "orig_target_sizes"
INPUT_NAMES = (INPUT_IMAGES, INPUT_SIZES)
OUTPUT_NAMES = ("labels", "boxes", "scores")
# the raw twin: outputs before top-k
RAW_OUTPUT_NAMES = ("pred_scores", "pred_boxes")


def one_of(name: str, value, allowed) -> str:
    """`value` if it is in `allowed`, else UserError naming the option and the allowed values."""
    if value not in allowed:
        from .errors import UserError

        raise UserError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value
