"""RT-DETRv2: backbone -> hybrid encoder -> decoder, and the builder that turns a variant name into one."""

import torch
import torch.nn as nn

from .backbone import PResNet
from .deformable import VALUE_PROJECTIONS, MSDeformableAttention, _check_method
from .decoder import RTDETRTransformerv2
from .encoder import HybridEncoder
from .variants import get_variant, parse_imgsz
from ..errors import UserError


class RTDETR(nn.Module):
    """forward(images [N,3,H,W] in [0,1], targets=None) ->
    {"pred_logits": [N,300,C], "pred_boxes": [N,300,4] cxcywh normalised} (+ auxiliary outputs in training)."""

    def __init__(self, backbone, encoder, decoder, variant: str, imgsz=(640, 640), class_names=None):
        super().__init__()
        self.backbone = backbone
        self.encoder = encoder
        self.decoder = decoder
        self.variant = variant
        self.imgsz = tuple(imgsz)
        self.num_classes = decoder.num_classes
        self.class_names = list(class_names) if class_names else default_class_names(self.num_classes)

    def forward(self, x, targets=None):
        return self.decoder(self.encoder(self.backbone(x)), targets)

    @property
    def sampling(self) -> str:
        return next(m.method for m in self.modules() if isinstance(m, MSDeformableAttention))

    def set_sampling(self, method: str) -> "RTDETR":
        try:
            method = _check_method(method)
        except ValueError as e:
            raise UserError(str(e)) from None
        for m in self.modules():
            if isinstance(m, MSDeformableAttention):
                m.method = method
        return self

    @property
    def value_projection(self) -> str:
        """The form grid_sample's value projection takes in the graph ("conv" or "matmul")."""
        return next(m.projection_form for m in self.modules() if isinstance(m, MSDeformableAttention))

    def set_value_projection(self, form: str) -> "RTDETR":
        """grid_sample's value projection as a 1x1 convolution ("conv") or a matrix product ("matmul"): the
        same arithmetic in the graph form a runtime runs best (MSDeformableAttention.project_maps)."""
        if form not in VALUE_PROJECTIONS:
            raise ValueError(f"value projection must be one of {', '.join(VALUE_PROJECTIONS)}, got {form!r}")
        for m in self.modules():
            if isinstance(m, MSDeformableAttention):
                m.value_projection = form
        return self

    def set_imgsz(self, imgsz) -> "RTDETR":
        self.imgsz = parse_imgsz(imgsz)
        self.decoder.set_eval_spatial_size(self.imgsz)
        return self

    def deploy(self) -> "RTDETR":
        """Eval mode with RepVGG branches fused (denoising and auxiliary outputs are training-only)."""
        self.eval()
        return self.to_form("deploy") if self.form == "train" else self

    @property
    def form(self) -> str:
        return getattr(self, "_form", "train")

    def to_form(self, form: str) -> "RTDETR":
        """Convert the layout in place (the mode stays as it is). Forms, each a superset of the one before:
        - "train": as built and as the authors publish (RepVGG blocks with two branches, BatchNorm);
        - "deploy": RepVGG branches fused into one 3x3 conv;
        - "qat": also BatchNorm folded into the convs (statistics frozen) and self-attention's packed input
          projection split into `qk_proj`/`v_proj` modules, so module quantizers see every matmul with weights.
        A checkpoint records its form (meta "form"); loading converts a fresh model to it first."""
        order = FORMS.index(_check_form(form))
        if order < FORMS.index(self.form):
            raise UserError(f"a {self.form}-form model cannot go back to the {form} form")
        if order >= 1 and self.form == "train":
            for m in self.modules():
                if hasattr(m, "convert_to_deploy"):
                    m.convert_to_deploy()
        if order >= 2 and self.form != "qat":
            from .attention import split_in_projection
            from .backbone import fold_batch_norm

            fold_batch_norm(self)
            for m in self.modules():
                if isinstance(m, nn.MultiheadAttention):
                    split_in_projection(m)
        self._form = form
        return self

    def meta(self) -> dict:
        meta = {"variant": self.variant, "num_classes": self.num_classes, "class_names": list(self.class_names),
                "imgsz": list(self.imgsz), "sampling": self.sampling, "form": self.form}
        if getattr(self, "quant", None) is not None:  # INT8 quantizers (rtdetr_edge.quant.fakequant)
            meta["quant"] = self.quant
        return meta


FORMS = ("train", "deploy", "qat")


def _check_form(form) -> str:
    if form not in FORMS:
        raise UserError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    return form


def build_model(variant: str, num_classes: int = 80, imgsz=640, sampling: str = "grid_sample",
                class_names=None) -> RTDETR:
    """Build a randomly initialised RT-DETRv2 variant (training mode, as nn.Modules are)."""
    v = get_variant(variant)
    size = parse_imgsz(imgsz)
    if num_classes < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    if class_names is not None and len(class_names) != num_classes:
        raise UserError(f"{len(class_names)} class names given for {num_classes} classes")
    try:
        sampling = _check_method(sampling)
    except ValueError as e:
        raise UserError(str(e)) from None
    backbone = PResNet(v.depth, freeze_norm=v.freeze_norm, freeze_at=v.freeze_at)
    encoder = HybridEncoder(in_channels=v.enc_in_channels, hidden_dim=v.enc_hidden_dim,
                            dim_feedforward=v.enc_dim_feedforward, expansion=v.expansion, depth_mult=v.depth_mult)
    decoder = RTDETRTransformerv2(num_classes=num_classes, hidden_dim=v.hidden_dim,
                                  feat_channels=[v.enc_hidden_dim] * 3, num_points=v.num_points,
                                  num_layers=v.dec_layers, eval_idx=v.eval_idx, eval_spatial_size=size,
                                  method=sampling)
    return RTDETR(backbone, encoder, decoder, variant, size, class_names)


COCO_NAMES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]


def default_class_names(num_classes: int):
    """COCO's 80 names for an 80-class model (the authors' label order), else class_0..class_{C-1}."""
    if num_classes == len(COCO_NAMES):
        return list(COCO_NAMES)
    return [f"class_{i}" for i in range(num_classes)]


@torch.no_grad()
def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
