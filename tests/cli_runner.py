"""Run the command line in this process, as the console script does: `main()` with sys.argv set, stdout and
stderr captured, the exit code from SystemExit. The same exit codes and messages as a subprocess, without
importing torch again for every case; a handful of tests (test_cli.py) still run real subprocesses to prove
the console script itself."""

import contextlib
import io
import logging
import os
import sys
from dataclasses import dataclass


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args, cwd=None) -> Result:
    from rtdetr_edge.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_argv, old_cwd = sys.argv, os.getcwd()
    root = logging.getLogger()
    old_handlers = root.handlers[:]
    root.handlers = []  # main() configures logging to stderr: let it bind to the captured stream
    code = 0
    try:
        sys.argv = ["rtdetr-edge", *map(str, args)]
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
        for h in root.handlers:
            h.close()
        root.handlers = old_handlers
    return Result(code, out.getvalue(), err.getvalue())
