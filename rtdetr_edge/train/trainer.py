"""Training as the authors do it: AdamW with parameter groups, linear warm-up, EMA, gradient clipping,
mixed precision on CUDA, atomic per-epoch checkpoints (`last.pt`, `best.pt` by AP), exact resume, and
data-parallel training under torchrun (DDP)."""

import contextlib
import csv
import json
import logging
import os
import random
import re
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..data.coco import CocoDetection, resolve_coco_dir
from ..data.transforms import eval_transforms, train_transforms
from ..errors import UserError, check_number
from ..fsutil import atomic_path, clean_stale
from ..model.checkpoint import META_KEY, atomic_save, infer_variant, load_state_into, read_checkpoint
from ..model.rtdetr import build_model
from ..model.variants import DEFAULT_VARIANT, parse_imgsz
from .criterion import RTDETRCriterion
from .ema import ModelEMA
from .evaluate import METRICS, collate, evaluate

log = logging.getLogger("rtdetr_edge")


@contextlib.contextmanager
def sigchld_as_found():
    """Leave the process's SIGCHLD handling as it was found. A data loader with worker processes installs
    PyTorch's Python-level SIGCHLD handler (it reports a dead worker) and never removes it; left in place in a
    process that goes on (a notebook, a service, our test suite) every child's exit then interrupts the
    process, and after a training run with --workers 2 a later subprocess call segfaulted the Python process
    (heap corruption, reproduced deterministically; with the handler reset afterwards the same sequence
    passes). The handler is kept while training runs and removed afterwards; PyTorch installs it again for the
    next loader."""
    if threading.current_thread() is not threading.main_thread():  # handlers are set in the main thread only
        yield
        return
    from torch.utils.data._utils import signal_handling

    before = signal.getsignal(signal.SIGCHLD)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGCHLD) is not before:
            signal.signal(signal.SIGCHLD, before if before is not None else signal.SIG_DFL)
            if hasattr(signal_handling, "_SIGCHLD_handler_set"):  # so that the next loader installs it again
                signal_handling._SIGCHLD_handler_set = False


@dataclass
class TrainConfig:
    data: str = None  # COCO folder (annotations/instances_{train,val}*.json + image folders)
    model: str = None  # the variant; default: that of --weights (of last.pt with resume), else DEFAULT_VARIANT
    weights: str = None  # start from (ours or the authors'); class tensors re-initialised if needed
    epochs: int = 72
    batch: int = 8
    imgsz: tuple = (640, 640)
    out: str = "runs/train"
    resume: bool = False
    replace: bool = False  # start a new run in a folder that holds one (the quickstart's own run folders on a rerun)
    lr: float = 1e-4
    backbone_lr_mult: float = None  # default: 0.1 with --weights, 1.0 from scratch
    weight_decay: float = 1e-4
    warmup_iters: int = 2000
    ema_decay: float = 0.9999
    ema_warmups: int = 2000
    clip_max_norm: float = 0.1
    amp: bool = True  # used where the device supports it (CUDA)
    workers: int = 2
    stop_epoch: int = None  # strong augmentations off from this epoch (default: epochs - 1 as released)
    strong_aug: bool = True
    multi_scale: bool = False
    seed: int = 0
    skip_bad: bool = False
    train_json: str = None
    val_json: str = None
    train_images: str = None
    val_images: str = None
    time_limit_min: float = None  # stop (after evaluating) when this many minutes have passed
    max_iters_per_epoch: int = None
    sync_bn: bool = False
    extra: dict = field(default_factory=dict)

    # the numbers a user sets: (field, option, lowest, lowest excluded); checked here, for the CLI and Python
    # callers alike
    RANGES = (("epochs", "--epochs", 1, False), ("batch", "--batch", 1, False), ("lr", "--lr", 0, True),
              ("warmup_iters", "--warmup-iters", 0, False), ("ema_warmups", "--ema-warmups", 1, False),
              ("workers", "--workers", 0, False), ("stop_epoch", "--stop-epoch", 0, False),
              ("time_limit_min", "--time-limit", 0, True))

    def __post_init__(self):
        for name, option, low, low_open in self.RANGES:
            check_number(option, getattr(self, name), low, low_open=low_open)


class _EpochDataset(torch.utils.data.Dataset):
    """Augmentations drawn from (seed, epoch, index): the same on resume and in any worker."""

    def __init__(self, base, transforms, seed):
        self.base, self.transforms, self.seed, self.epoch = base, transforms, seed, 0

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        self.transforms.set_epoch(self.epoch)
        image, target = self.base.load(i)
        return self.transforms(image, target, rng)


def param_groups(model, lr, weight_decay, backbone_lr_mult):
    """AdamW groups as released: backbone at lr*mult; no weight decay on norm (or quantizer) parameters."""
    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # no decay on norms, nor on quantizer parameters (learned ranges, should a quantizer have them)
        is_norm = re.search(r"(norm|bn|_quantizer\.)", name) is not None
        is_backbone = name.startswith("backbone.")
        key = (is_backbone, is_norm)
        groups.setdefault(key, []).append(p)
    return [{"params": ps, "lr": lr * (backbone_lr_mult if bb else 1.0),
             "weight_decay": 0.0 if norm else weight_decay} for (bb, norm), ps in groups.items()]


def _distributed():
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _rank():
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def build_datasets(cfg: TrainConfig):
    if cfg.train_json or cfg.val_json:
        if not (cfg.train_json and cfg.val_json and (cfg.train_images or cfg.val_images)):
            raise UserError("--train-json, --val-json and --images (or --train-images/--val-images) go together")
        train_ann, val_ann = Path(cfg.train_json), Path(cfg.val_json)
        train_img, val_img = Path(cfg.train_images or cfg.val_images), Path(cfg.val_images or cfg.train_images)
    else:
        if not cfg.data:
            raise UserError("give --data DIR (COCO layout) or --train-json/--val-json/--images")
        train_ann, train_img = resolve_coco_dir(cfg.data, "train")
        val_ann, val_img = resolve_coco_dir(cfg.data, "val")
    train = CocoDetection(train_ann, train_img, skip_bad=cfg.skip_bad)
    val = CocoDetection(val_ann, val_img, transforms=eval_transforms(cfg.imgsz), skip_bad=cfg.skip_bad)
    if train.category_ids != val.category_ids:
        raise UserError(f"{train_ann.name} and {val_ann.name} have different categories")
    return train, val


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        cfg.imgsz = parse_imgsz(cfg.imgsz)
        self.out = Path(cfg.out)
        held = [n for n in ("last.pt", "best.pt") if (self.out / n).is_file()]
        if held and not (cfg.resume or cfg.replace):  # a new run would replace them at its first epoch: a 72-epoch best.pt, lost
            raise UserError(f"--out {self.out}: holds a run ({', '.join(held)}); --resume continues it, another "
                            "--out starts a new one")
        if _distributed() and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        self.rank = _rank()
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available()
                                   else "cpu")
        self.use_amp = cfg.amp and self.device.type == "cuda"
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)

        self.train_set, self.val_set = build_datasets(cfg)
        if self.rank == 0:
            log.info(self.train_set.report())
            log.info(self.val_set.report())
        self.model = self.build_model()
        self.model.to(self.device)
        mult = cfg.backbone_lr_mult if cfg.backbone_lr_mult is not None else (0.1 if cfg.weights else 1.0)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, cfg.lr, cfg.weight_decay, mult), lr=cfg.lr,
                                           betas=(0.9, 0.999))
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.ema = ModelEMA(self.model, cfg.ema_decay, cfg.ema_warmups)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.criterion = RTDETRCriterion(self.model.num_classes)
        self.epoch, self.iteration, self.best_ap, self.history = 0, 0, -1.0, []
        self.deadline = None
        stop = cfg.stop_epoch if cfg.stop_epoch is not None else max(cfg.epochs - 1, 1)
        self.train_data = _EpochDataset(self.train_set, train_transforms(cfg.imgsz, stop, cfg.strong_aug), cfg.seed)
        self.stop_epoch = stop
        if self.rank == 0 and self.out.is_dir():  # leftovers of a run killed while it was saving
            for name in ("last.pt", "best.pt", "metrics.csv", "metrics.png"):
                clean_stale(self.out / name)
        if cfg.resume:
            self._resume(self.out / "last.pt")
        self.ddp_model = self.model
        if dist.is_initialized():
            if cfg.sync_bn:
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)

    def build_model(self):
        """The model to train: built from the variant, started from --weights if given (QAT overrides this)."""
        cfg = self.cfg
        state, meta = None, {}
        if cfg.weights and not cfg.resume:
            state, meta, _ = read_checkpoint(cfg.weights)
        elif cfg.model is None and cfg.resume and (self.out / "last.pt").is_file():
            _, meta, _ = read_checkpoint(self.out / "last.pt")
        if cfg.model is None:  # the checkpoint's own variant: `train --weights r50.pth` fine-tunes an r50
            cfg.model = (meta or {}).get("variant") or (infer_variant(state) if state is not None else
                                                        DEFAULT_VARIANT)
        model = build_model(cfg.model, num_classes=self.train_set.num_classes, imgsz=cfg.imgsz,
                            class_names=self.train_set.class_names)
        if cfg.weights and not cfg.resume:
            reinit = load_state_into(model, state, source=str(cfg.weights))
            if reinit and self.rank == 0:
                log.warning("%s: re-initialised %d class-dependent tensors for %d classes", cfg.weights,
                            len(reinit), model.num_classes)
        return model

    def compute_losses(self, images, outputs, targets) -> dict:
        """The weighted loss terms of one step (QAT adds distillation)."""
        return self.criterion(outputs, targets)

    # -- checkpoints ---------------------------------------------------------------------------
    def _state(self):
        cfg = asdict(self.cfg)
        cfg["imgsz"] = list(cfg["imgsz"])
        return {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                META_KEY: self.model.meta(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": self.epoch, "iteration": self.iteration, "best_ap": self.best_ap,
                "history": self.history, "config": json.dumps(cfg),
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate()}}

    def _resume(self, path):
        if not path.is_file():
            raise UserError(f"{path}: nothing to resume (no last.pt in {self.out})")
        _, _, ckpt = read_checkpoint(path)
        for key in ("optimizer", "epoch", "iteration", "ema"):
            if key not in ckpt:
                raise UserError(f"{path}: not a training checkpoint (no '{key}')")
        load_state_into(self.model, ckpt["model"], source=str(path))
        self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt.get("scaler", {}))
        self.epoch, self.iteration = int(ckpt["epoch"]), int(ckpt["iteration"])
        self.best_ap, self.history = float(ckpt["best_ap"]), list(ckpt["history"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        random.setstate(ckpt["rng"]["python"])
        if self.rank == 0:
            log.info("resumed from %s at epoch %d (iteration %d)", path, self.epoch, self.iteration)

    def _set_lr(self):
        warm = min(1.0, (self.iteration + 1) / max(self.cfg.warmup_iters, 1))
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * warm

    # -- loops ---------------------------------------------------------------------------------
    def _loader(self):
        self.train_data.epoch = self.epoch
        g = torch.Generator().manual_seed(self.cfg.seed * 1000 + self.epoch)
        sampler = None
        if dist.is_initialized():
            sampler = torch.utils.data.distributed.DistributedSampler(self.train_data, seed=self.cfg.seed)
            sampler.set_epoch(self.epoch)
        return torch.utils.data.DataLoader(self.train_data, batch_size=self.cfg.batch, shuffle=sampler is None,
                                           sampler=sampler, generator=g, collate_fn=collate, drop_last=True,
                                           num_workers=self.cfg.workers, persistent_workers=False)

    def _multi_scale(self, images):
        if not self.cfg.multi_scale or self.epoch >= self.stop_epoch:
            return images
        h, w = self.cfg.imgsz
        r = random.choice([0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25])
        size = (max(32, int(h * r) // 32 * 32), max(32, int(w * r) // 32 * 32))
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False)

    def _past_deadline(self) -> bool:
        """Whether the time limit has passed, decided by rank 0 and broadcast: every rank stops at the same
        iteration (ranks deciding by their own clocks could stop apart and hang in an all-reduce)."""
        if self.deadline is None:
            return False
        stop = time.time() >= self.deadline
        if dist.is_initialized():
            flag = torch.tensor([1.0 if stop else 0.0], device=self.device if self.device.type == "cuda" else "cpu")
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        return stop

    def train_one_epoch(self, on_step=None):
        self.model.train()
        torch.manual_seed(self.cfg.seed * 100003 + self.epoch)  # denoising noise: same on resume
        loader = self._loader()
        n_iter = len(loader) if self.cfg.max_iters_per_epoch is None else min(len(loader),
                                                                               self.cfg.max_iters_per_epoch)
        sums, count, start = {}, 0, time.time()
        for i, (images, targets) in enumerate(loader):
            if i >= n_iter or self._past_deadline():
                break
            images = self._multi_scale(images.to(self.device))
            targets = [{k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
            self._set_lr()
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                outputs = self.ddp_model(images, targets)
            if not all(torch.isfinite(outputs[k]).all() for k in ("pred_logits", "pred_boxes")):
                self._diverged(f"the model's outputs became non-finite at epoch {self.epoch + 1}, iteration {i + 1}")
            with torch.autocast(self.device.type, enabled=False):
                losses = self.compute_losses(images, outputs, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):  # diverged: stop before a broken step reaches a checkpoint
                self._diverged(f"the loss became {loss.item()} at epoch {self.epoch + 1}, iteration {i + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.cfg.clip_max_norm > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_max_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.ema.update(self.model)
            self.iteration += 1
            main = {k: v.item() for k, v in losses.items() if "_" not in k[len("loss_"):]}
            main["loss"] = loss.item()
            for k, v in main.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            if on_step:
                on_step(i + 1, n_iter, main, count * self.cfg.batch * self.world / (time.time() - start))
        elapsed = time.time() - start
        means = {k: v / max(count, 1) for k, v in sums.items()}
        means["images_per_s"] = count * self.cfg.batch * self.world / max(elapsed, 1e-9)
        return means

    def fit(self, on_step=None, on_epoch=None):
        """Train from the current epoch to cfg.epochs (or the time limit). Returns the history."""
        from ..fsutil import folder_lock

        with sigchld_as_found():
            if self.rank != 0:
                return self._fit(on_step, on_epoch)
            self.out.mkdir(parents=True, exist_ok=True)
            with folder_lock(self.out):  # two runs in one folder would interleave last.pt and best.pt
                return self._fit(on_step, on_epoch)

    def _fit(self, on_step, on_epoch):
        start = time.time()
        done = self.history[-1]["minutes"] if self.history else 0.0  # a resumed run's clock goes on
        if self.cfg.time_limit_min:
            self.deadline = start + self.cfg.time_limit_min * 60
        while self.epoch < self.cfg.epochs:
            train_stats = self.train_one_epoch(on_step)
            self._check_finite()
            metrics = evaluate(self.ema.module, self.val_set, batch_size=self.cfg.batch) if self.rank == 0 else {}
            self.epoch += 1
            if self.rank == 0:
                seen = self.iteration * self.cfg.batch * self.world / len(self.train_data)
                row = {"epoch": self.epoch, "iteration": self.iteration, "epochs_seen": round(seen, 3),
                       "minutes": done + (time.time() - start) / 60,
                       **{f"train_{k}": v for k, v in train_stats.items()},
                       **{m: metrics[m] for m in METRICS}}
                self.history.append(row)
                is_best = metrics["AP"] > self.best_ap
                self.best_ap = max(self.best_ap, metrics["AP"])
                self.out.mkdir(parents=True, exist_ok=True)
                state = self._state()
                atomic_save(state, self.out / "last.pt")
                if is_best:
                    atomic_save(state, self.out / "best.pt")
                self._write_metrics()
                if on_epoch:
                    on_epoch(row, metrics)
            if self._past_deadline():
                break
        if dist.is_initialized():
            dist.barrier()
        return self.history

    def _check_finite(self):
        """A loss can stay finite while the weights it updated do not (a huge --lr): stop before such a model
        is evaluated or saved, so best.pt and last.pt stay the last good ones."""
        for name, module in (("model", self.model), ("EMA model", self.ema.module)):
            bad = next((k for k, v in module.state_dict().items()
                        if v.is_floating_point() and not torch.isfinite(v).all()), None)
            if bad is not None:
                self._diverged(f"the {name}'s weights became non-finite ({bad}) in epoch {self.epoch + 1}")

    def _diverged(self, what: str):
        best = self.out / "best.pt"
        kept = f"{best} stays the last good checkpoint" if best.exists() else "no checkpoint was written"
        raise UserError(f"{what}: training diverged (lower --lr); stopped, {kept}")


    def _write_metrics(self):
        rows = self.history
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with atomic_path(self.out / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        plot_history(rows, self.out / "metrics.png")


def plot_history(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.get("epochs_seen", r["epoch"]) for r in rows]  # a time-limited run's last epoch is partial
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for key in dict.fromkeys(k for r in rows for k in r if k.startswith("train_loss")):
        have = [(e, r[key]) for e, r in zip(epochs, rows) if key in r]  # QAT's row 0 is before training
        a.plot([e for e, _ in have], [v for _, v in have], marker="o", label=key[len("train_"):])
    a.set_xlabel("epochs of training data seen")
    a.set_title("training loss: total, and weighted final-layer terms")
    a.legend()
    for key in ("AP", "AP50", "AP75"):
        b.plot(epochs, [r[key] for r in rows], marker="o", label=key)
    b.set_xlabel("epochs of training data seen")
    b.set_ylim(0, 1)
    b.set_title("validation (EMA model)")
    b.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
