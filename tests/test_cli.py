"""The command line as a user runs it: real subprocesses, exit codes, no tracebacks."""

import subprocess
import sys

import pytest

from cli_runner import run_cli


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rtdetr_edge.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_models_lists_every_variant_with_counts():
    r = run("models")
    assert r.returncode == 0, r.stderr
    rows = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if line.count("│") > 5}
    for variant, alias, params in [("rtdetrv2_r18vd", "RT-DETRv2-S", "20.2"), ("rtdetrv2_r34vd", "RT-DETRv2-M*", "31.4"),
                                   ("rtdetrv2_r50vd_m", "RT-DETRv2-M", "36.6"), ("rtdetrv2_r50vd", "RT-DETRv2-L", "42.9"),
                                   ("rtdetrv2_r101vd", "RT-DETRv2-X", "76.6")]:
        assert alias in rows[variant] and params in rows[variant], variant
    narrow = rows["rtdetrv2_r18vd_narrow"]  # ours, not the authors': said so, no published AP
    assert "(ours)" in narrow and narrow.split("│")[-2].strip() == "-", narrow


def _commands():
    """Every command of the CLI, from the app itself (a new command is covered without editing the test)."""
    import typer.main

    from rtdetr_edge.cli import app

    cli_group = typer.main.get_command(app)
    out = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, path + (name,))
        else:
            out.append(path)
    walk(cli_group, ())
    return out


def test_help_on_every_command():
    commands = _commands()
    assert len(commands) >= 9 and ("data", "synth") in commands and ("quickstart",) in commands
    for cmd in [()] + commands:  # in this process; the console script itself: test_cli_is_a_real_program
        r = run_cli(*cmd, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout, cmd
    r = run("export", "--help")  # one real subprocess: the module runs as a program
    assert r.returncode == 0 and "Usage" in r.stdout


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    r = run("data", "synth", root / "data", "--train", "2", "--val", "2", "--imgsz", "160")
    assert r.returncode == 0, r.stderr
    r = run("init", "--out", root / "w.pt", "--num-classes", "6", "--imgsz", "128")
    assert r.returncode == 0, r.stderr
    return root


def test_predict_prints_and_saves(tiny_setup):
    r = run("predict", "--weights", tiny_setup / "w.pt", "--source", tiny_setup / "data" / "val", "--conf", "0.0",
            "--save", tiny_setup / "drawn", "--imgsz", "128x160")
    assert r.returncode == 0, r.stderr
    assert "val_000000.jpg" in r.stdout and "300 detections" in r.stdout
    assert sorted(p.name for p in (tiny_setup / "drawn").iterdir()) == ["val_000000.jpg", "val_000001.jpg"]


@pytest.mark.parametrize("make_bad,expect", [
    (lambda d: d / "absent.pt", "checkpoint not found"),
    (lambda d: (d / "trunc.pt").write_bytes((d / "w.pt").read_bytes()[:5000]) and d / "trunc.pt", "not a readable"),
    (lambda d: (d / "text.pt").write_text("hello") and d / "text.pt", "not a readable"),
])
def test_bad_checkpoint_is_one_line_exit_2(tiny_setup, make_bad, expect):
    path = make_bad(tiny_setup)
    r = run("predict", "--weights", path, "--source", tiny_setup / "data" / "val")
    assert r.returncode == 2
    assert expect in r.stderr and str(path.name) in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_imgsz_and_source_exit_2(tiny_setup):
    r = run("predict", "--weights", tiny_setup / "w.pt", "--source", tiny_setup / "data" / "val", "--imgsz", "100")
    assert r.returncode == 2 and "multiple of 32" in r.stderr and "Traceback" not in r.stderr
    r = run("predict", "--weights", tiny_setup / "w.pt", "--source", tiny_setup / "nowhere")
    assert r.returncode == 2 and "nowhere" in r.stderr
