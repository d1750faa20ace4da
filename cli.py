"""Top-level shim: `python cli.py ...` is the same as `rtdetr-edge ...`."""

from rtdetr_edge.cli import app

if __name__ == "__main__":
    app()
