"""Run under torchrun by test_train.py: rank 1's clock jumps an hour ahead after training starts, so rank 1
alone would think the time limit has passed. The stop decision must come from rank 0 for every rank
(otherwise rank 1 leaves the loop and rank 0 hangs in the next all-reduce)."""

import itertools
import sys
import time
import types

import torch.distributed as dist

from rtdetr_edge.train import trainer as trainer_module
from rtdetr_edge.train.trainer import TrainConfig, Trainer

data, out = sys.argv[1], sys.argv[2]
cfg = TrainConfig(data=data, model="rtdetrv2_r18vd_narrow", epochs=1, batch=2, imgsz=96, out=out, workers=0, warmup_iters=2, time_limit_min=30)
trainer = Trainer(cfg)
if dist.get_rank() == 1:
    calls = itertools.count()
    trainer_module.time = types.SimpleNamespace(time=lambda: time.time() + (3600 if next(calls) > 0 else 0))
trainer.fit()
print(f"rank {dist.get_rank()} stopped at iteration {trainer.iteration}", flush=True)
