"""What an export can be: the format registry (what each format supports; anything else is refused by
looking it up) and ExportConfig, the settings of one export built in layers (defaults < recipe < caller)."""

from dataclasses import dataclass, field, fields
from typing import Optional

from .. import vocab
from ..errors import UserError
from ..vocab import INT8_FLOATS, SAMPLINGS, SIMPLIFIERS


@dataclass(frozen=True)
class Format:
    name: str
    artifact: str  # file name of the shipped graph inside the bundle
    precisions: tuple
    samplings: tuple
    default_sampling: str
    dynamic_batch: bool
    packages: tuple  # versions recorded in the manifest
    refusals: dict = field(default_factory=dict)  # precision -> why it is not offered
    # grid_sample's value projection (RTDETR.set_value_projection): "matmul" where the runtime keeps convolution
    # outputs in a layout its GridSample cannot read (docs/int8.md)
    value_projection: str = "conv"


FORMATS = {
    "onnx": Format("onnx", "model.onnx", ("fp32", "int8"), SAMPLINGS, "grid_sample", True,
                   ("onnx", "onnxruntime", "onnxslim"),
                   {"fp16": "ONNX FP16 is not offered: onnxconverter-common wrote graphs onnxruntime rejects (mixed "
                            "float16/float types); export FP32 ONNX and let the runtime choose FP16 (trtexec "
                            "--fp16), or use --format openvino/tflite --precision fp16"}),
    # OpenVINO keeps its convolutions' outputs channel-last or blocked and GridSample reads planar, so a 1x1
    # convolution there cost a reorder of all values per decoder layer; a matrix product writes planar. ONNX keeps
    # the convolution: onnxruntime's u8s8 quantizer takes only a MatMul's second input as a weight (this weight
    # is the first), and the s8s8 ONNX file is TensorRT's, which we cannot test with a weight there
    "openvino": Format("openvino", "model.xml", ("fp32", "fp16", "int8"), SAMPLINGS, "grid_sample", True,
                       ("onnx", "openvino"), value_projection="matmul"),
    # TFLite has no GridSample op: the gather sampler gives the same bilinear numbers
    "tflite": Format("tflite", "model.tflite", ("fp32", "fp16", "int8"), SAMPLINGS, "gather", False,
                     ("litert-torch", "ai-edge-litert")),
}
INT8_GOLDEN = 8  # golden images in an INT8 bundle (one per batch otherwise)
RAW_DIR = "raw"  # the raw twin (outputs before top-k) lives in raw/ with the same file name


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {name!r}")
    return FORMATS[name]


@dataclass
class ExportConfig:
    """Everything an export needs. Built in layers (defaults < recipe < what the user set): a field a
    layer leaves as None keeps what the layer below said."""

    weights: str = None
    format: str = "onnx"
    precision: str = "fp32"
    imgsz: Optional[tuple] = None  # None: the checkpoint's size
    batch: int = 1
    dynamic_batch: bool = False
    sampling: Optional[str] = None  # None: the format's default
    opset: int = vocab.OPSET_DEFAULT
    simplifier: str = "onnxslim"  # onnxslim, onnxsim or none; a result is kept only if outputs stay the same
    out: Optional[str] = None  # None: exports/VARIANT_HxW_FORMAT_PRECISION
    force: bool = False
    # INT8 (export/int8.py): the placement policy for PTQ, the calibration list, the artifact form
    policy: Optional[str] = None
    calib: Optional[str] = None
    int8_form: Optional[str] = None
    # OpenVINO INT8: the precision of the layers that stay float (f32; bf16 runs them faster on CPUs with
    # AVX512-BF16 or AMX, and costs accuracy: docs/int8.md#the-float-layers-in-bf16). Recorded in the manifest;
    # the runtime asks OpenVINO for it, and a CPU without native bf16 runs f32 (the report says which ran)
    int8_float: Optional[str] = None
    # DeepStream / Triton / ROS 2 files added to the bundle (rtdetr_edge/integrations)
    integrations: tuple = ()
    # the raw twin (raw/: the network again, outputs before top-k) for pre-top-k parity on the device; a
    # device short of storage can leave it out: verify then checks the top-k outputs only
    raw_twin: bool = True

    @classmethod
    def resolve(cls, **layers) -> tuple:
        """ExportConfig.resolve(recipe={...}, cli={...}) -> (config, {field: layer that set it}). Later layers
        win; None means "not set"; unknown fields are an error naming the layer."""
        names = {f.name for f in fields(cls)}
        values, origin = {}, {}
        for layer, given in layers.items():
            for key, value in (given or {}).items():
                if key not in names:
                    raise UserError(f"{layer}: unknown export setting {key!r} (known: {', '.join(sorted(names))})")
                if value is not None:
                    values[key], origin[key] = value, layer
        cfg = cls(**values)
        cfg.validate()
        return cfg, origin

    def validate(self) -> "ExportConfig":
        from ..model.variants import parse_imgsz

        fmt = get_format(self.format)
        if self.precision not in fmt.precisions:
            raise UserError(fmt.refusals.get(self.precision) or
                            f"--precision {self.precision!r} is not offered for {fmt.name} "
                            f"(it offers {', '.join(fmt.precisions)})")
        self.sampling = self.sampling or fmt.default_sampling
        if self.sampling not in fmt.samplings:
            raise UserError(f"--sampling must be one of {', '.join(fmt.samplings)}, got {self.sampling!r}")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise UserError(f"--batch must be an integer >= 1, got {self.batch!r}")
        if self.dynamic_batch and not fmt.dynamic_batch:
            raise UserError(f"--dynamic-batch is not supported for {fmt.name} (fixed shapes); give --batch N")
        if self.dynamic_batch and self.batch != 1:
            raise UserError("--batch and --dynamic-batch exclude each other: give one")
        if not vocab.OPSET_MIN <= int(self.opset) <= vocab.OPSET_MAX:
            raise UserError(f"--opset must be {vocab.OPSET_MIN}..{vocab.OPSET_MAX}, got {self.opset}")
        if self.sampling == "grid_sample" and self.opset < vocab.GRIDSAMPLE_MIN_OPSET and self.format != "tflite":
            raise UserError(f"--opset {self.opset}: GridSample needs opset 16 or newer; give --sampling gather "
                            f"(the same bilinear numbers through gathers) for opsets 13..15")
        if self.simplifier not in SIMPLIFIERS:
            raise UserError(f"--simplifier must be one of {', '.join(SIMPLIFIERS)}, got {self.simplifier!r}")
        if self.imgsz is not None:
            self.imgsz = parse_imgsz(self.imgsz)
        from ..integrations import parse_integrations

        self.integrations = parse_integrations(self.integrations) or ()
        if self.precision == "int8":
            from .int8 import check_form

            self.int8_form = check_form(self.format, self.int8_form)
            if self.format == "onnx" and self.opset < 13:
                raise UserError("--precision int8 needs ONNX opset 13 or newer (per-channel Q/DQ)")
        elif self.int8_form or self.calib or self.int8_float:
            option = "--int8-form" if self.int8_form else "--calib" if self.calib else "--int8-float"
            raise UserError(f"{option} goes with --precision int8")
        if self.int8_float is not None:
            if self.int8_float not in INT8_FLOATS:
                raise UserError(f"--int8-float must be one of {', '.join(INT8_FLOATS)}, got {self.int8_float!r}")
            if self.format != "openvino":
                raise UserError(f"--int8-float goes with --format openvino ({self.format} runs its float layers "
                                "as converted)")
        return self
