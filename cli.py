"""Top-level shim: `python cli.py ...` is the same as `rtdetr-edge ...` (the same one-line errors)."""

from rtdetr_edge.cli import main

if __name__ == "__main__":
    main()
