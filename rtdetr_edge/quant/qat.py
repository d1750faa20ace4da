"""Quantization-aware fine-tuning: training as `rtdetr-edge train` does it (AdamW, warm-up, EMA, atomic
`last.pt`/`best.pt`, `metrics.csv`, exact `--resume`), on the fake-quant model.

- Start: the FP32 checkpoint in the QAT form (RepVGG fused, BatchNorm folded: statistics frozen, which is
  also what the device runs; self-attention projections as modules), INT8 quantizers on the policy's layers,
  ranges from max calibration on the calibration list. That calibrated model is the PTQ baseline: it is
  evaluated before the first step (row `epoch 0` in metrics.csv).
- Loss: the training criterion (matching, VFL, boxes, denoising, auxiliary layers) plus, with distillation,
  the mean squared difference of the hybrid encoder's three output feature maps to the FP32 teacher's,
  each divided by the teacher map's variance. Those maps are spatially aligned with the teacher's, so no
  query matching is needed; the decoder outputs are not distilled (the two models' top-k may pick
  different queries).
- Ranges are static during fine-tuning (modelopt's max calibration; no learned scales).
"""

import logging
from dataclasses import dataclass

import torch

from ..errors import UserError
from ..model.checkpoint import load_model, prepare_form, read_checkpoint
from ..train.trainer import TrainConfig, Trainer
from .fakequant import WEIGHT_BITS

log = logging.getLogger("rtdetr_edge")


@dataclass
class QATConfig(TrainConfig):
    """QAT's schedule, in one place (the `qat` command and the quickstart use these defaults): a short
    fine-tune at a low learning rate, a fast EMA, no strong augmentation."""
    epochs: int = 3
    batch: int = 4
    lr: float = 1e-5
    warmup_iters: int = 50
    ema_decay: float = 0.999
    ema_warmups: int = 200
    strong_aug: bool = False
    policy: str = "default"  # a shipped policy name or a YAML file (recipes/policies/)
    calib: str = "shapes-64"  # a calibration list (calib/)
    distill: bool = True
    distill_weight: float = 1.0
    # 7: weights on a 7-bit grid, so the INT8 file keeps its accuracy on x86 CPUs without VNNI (int16
    # saturation, quant/fakequant.py); 8: the full int8 grid (GPUs, VNNI CPUs, ARM)
    weight_bits: int = 7
    RANGES = tuple(r if r[0] != "time_limit_min" else ("time_limit_min", "--minutes", 0, True)
                   for r in TrainConfig.RANGES)

    def __post_init__(self):
        super().__post_init__()
        if self.weight_bits not in WEIGHT_BITS:
            raise UserError(f"--weight-bits must be 7 or 8, got {self.weight_bits}")


class _Capture:
    """Keeps the last output of a module (a forward hook)."""

    def __init__(self, module):
        self.value = None
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.value = output


class QATTrainer(Trainer):
    def __init__(self, cfg: QATConfig):
        if not cfg.weights and not cfg.resume:
            raise UserError("--weights is required: QAT fine-tunes a trained FP32 checkpoint")
        self.ptq_metrics = None
        super().__init__(cfg)
        self.teacher = None
        if cfg.distill:
            weights = cfg.weights or self._recorded_weights()
            self.teacher = load_model(weights, imgsz=cfg.imgsz).deploy().to(self.device)
            for p in self.teacher.parameters():
                p.requires_grad_(False)
            self._student_enc = _Capture(self.model.encoder)
            self._teacher_enc = _Capture(self.teacher.encoder)

    def _recorded_weights(self):
        import json

        _, _, ckpt = read_checkpoint(self.out / "last.pt")
        return json.loads(ckpt["config"])["weights"]

    def build_model(self):
        from .calib import load_calib
        from .fakequant import quantize
        from .policy import load_policy

        cfg = self.cfg
        if cfg.resume:  # the quantizers as last.pt recorded them; Trainer._resume loads weights and ranges
            from ..model.rtdetr import build_model

            state, meta, _ = read_checkpoint(self.out / "last.pt") if (self.out / "last.pt").is_file() \
                else (None, None, None)
            if meta is None or not meta.get("quant"):
                raise UserError(f"{self.out / 'last.pt'}: not a QAT run to resume")
            cfg.model = meta["variant"]
            model = build_model(meta["variant"], num_classes=meta["num_classes"], imgsz=cfg.imgsz,
                                class_names=meta.get("class_names"))
            return prepare_form(model, meta, state)
        model = load_model(cfg.weights, imgsz=cfg.imgsz)
        if model.num_classes != self.train_set.num_classes:
            raise UserError(f"{cfg.weights}: {model.num_classes} classes, the dataset has "
                            f"{self.train_set.num_classes}; QAT fine-tunes a model trained on this dataset")
        cfg.model = model.variant
        policy = load_policy(cfg.policy)
        calib = load_calib(cfg.calib)
        quantize(model.to(self.device), policy, calib.batches(cfg.imgsz, batch=max(1, cfg.batch)), source="qat",
                 weight_bits=cfg.weight_bits)
        model.quant["calib"] = calib.describe()
        return model

    def compute_losses(self, images, outputs, targets) -> dict:
        losses = self.criterion(outputs, targets)
        if self.teacher is not None:
            with torch.no_grad():
                self.teacher.encoder(self.teacher.backbone(images))
            student, teacher = self._student_enc.value, self._teacher_enc.value
            terms = [((s - t) ** 2).mean() / t.var().clamp_min(1e-6) for s, t in zip(student, teacher)]
            losses["loss_distill"] = self.cfg.distill_weight * sum(terms) / len(terms)
        return losses

    def fit(self, on_step=None, on_epoch=None):
        if not self.history and self.rank == 0:  # the calibrated model before any step: the PTQ baseline
            from ..train.evaluate import METRICS, evaluate

            metrics = evaluate(self.model, self.val_set, batch_size=self.cfg.batch)
            self.ptq_metrics = {m: metrics[m] for m in METRICS}
            self.history.append({"epoch": 0, "iteration": 0, "epochs_seen": 0.0, "minutes": 0.0,
                                 **{m: metrics[m] for m in METRICS}})
            if on_epoch:
                on_epoch(self.history[-1], metrics)
        return super().fit(on_step, on_epoch)
