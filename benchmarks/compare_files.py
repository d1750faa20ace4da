"""Shared by the benchmarks that compare ways of making one artifact (tflite_policy.py, qat_ranges.py): each
file's COCO AP drop against an FP32 checkpoint with its paired bootstrap interval (one parity run), and its
p50 latency (the files timed round-robin in one process)."""


def accuracy_and_speed(bundles: dict, fp32, data, runs: int) -> dict:
    """{name: {AP, torch_AP, ap_drop_points, interval_points, top100_match, p50_ms, gate}} for {name: bundle}."""
    from rtdetr_edge.benchmark import benchmark
    from rtdetr_edge.parity import parity

    report = parity(list(bundles.values()), weights=fp32, data=data)
    speed = benchmark([str(p) for p in bundles.values()], runs=runs, warmup=3)
    by = {e["model"]: e for e in speed["models"]}
    out = {}
    for (name, path), a in zip(bundles.items(), report["artifacts"]):
        m = a["metrics"]
        lo, hi = m["ap_drop_interval"]["lo"], m["ap_drop_interval"]["hi"]
        out[name] = {"AP": m["AP"], "torch_AP": m["torch_AP"], "ap_drop_points": 100 * m["ap_drop"],
                     "interval_points": [100 * lo, 100 * hi], "top100_match": m.get("top100_match"),
                     "p50_ms": by[str(path)]["p50_ms"], "gate": a.get("ap_gate", {}).get("status")}
    return out
