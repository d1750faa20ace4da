"""What this machine's CPU can do, for reports and benchmarks (device side: standard library only)."""

import os
import platform

# /proc/cpuinfo flag -> the name reports use; the ones that change which kernels a runtime picks
FEATURES = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX512F", "avx512_vnni": "AVX512-VNNI",
            "avx512_bf16": "AVX512-BF16", "avx512_fp16": "AVX512-FP16", "amx_bf16": "AMX-BF16",
            "amx_int8": "AMX-INT8", "avx_vnni": "AVX-VNNI", "asimd": "NEON", "asimdhp": "ARM-FP16",
            "asimddp": "ARM-DOTPROD", "i8mm": "ARM-I8MM", "bf16": "ARM-BF16"}


def cpu_flags(cpuinfo="/proc/cpuinfo") -> set:
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model(cpuinfo="/proc/cpuinfo") -> str:
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_info() -> dict:
    """{'model', 'machine', 'cores', 'features': [...]} -- features as named in FEATURES, in that order."""
    flags = cpu_flags()
    return {"model": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(),
            "features": [name for flag, name in FEATURES.items() if flag in flags]}


def cpu_line(cpu: dict) -> str:
    """The line a benchmark prints first: model, cores, features (compare ratios, not times, across CPUs)."""
    return f"CPU: {cpu['model']}, {cpu['cores']} cores, {', '.join(cpu['features'])}"
