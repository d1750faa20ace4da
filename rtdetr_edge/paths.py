"""Where the shipped data lives: devices/, devices/runtimes/, recipes/ (+ policies/) and calib/, linked from
rtdetr_edge/_targets/ in a checkout and real folders in a wheel. Imports nothing of ours, so the targets and
the INT8 data (quant.calib, quant.policy) both read it without importing each other."""

from pathlib import Path

DATA = Path(__file__).parent / "_targets"


def data_dir(name) -> Path:
    return DATA / name
