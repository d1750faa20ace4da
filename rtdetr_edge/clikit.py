"""What every command of the command line shares: the consoles, one-line errors (exit 2), numeric option
checks, and running the typer app as the console script does (click's usage errors as one line too)."""

import errno
import functools
import logging
import sys
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from .errors import UserError

# tables keep their columns when printed to a file or a pipe (rich would assume 80 columns)
console = Console(width=None if sys.stdout.isatty() else 180)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 180)


_REFUSALS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


def user_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            _error(str(e))
            raise typer.Exit(2)
        except OSError as e:  # the file system refused (a read-only or full disk, no permission): one line
            if e.errno not in _REFUSALS or not e.filename:
                raise
            _error(f"{e.filename}: {e.strerror}")
            raise typer.Exit(2)
        except ModuleNotFoundError as e:
            from .extras import missing_message

            message = missing_message(e.name)
            if message is None:
                raise
            _error(message)
            raise typer.Exit(2)
    return wrapper


def _error(text: str):
    """One line on stderr: 'error: TEXT', TEXT printed literally (a [bracket] in it is text, not markup)."""
    err.print("[red]error:[/red] " + escape(text), markup=True, highlight=False, soft_wrap=True)


@contextmanager
def progress(label, total=None):
    """A transient progress bar on stderr; yields `advance(n=1)` (and `.bar`, the rich Progress, for work
    that drives its own tasks)."""
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)

        def advance(n=1):
            bar.advance(task, n)

        advance.bar = bar
        advance.update = lambda **kw: bar.update(task, **kw)  # total=, completed=
        yield advance


def quiet_libraries():
    """A user sees our messages, not the libraries' noise: JAX (imported by TFLite's INT8 quantizer) warns at
    every os.fork() that forking a multithreaded process may deadlock; our forks (data loader workers,
    subprocesses) run no JAX."""
    import warnings

    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)


def run(app):
    """Run the typer app as the console script does: click's own usage errors (a missing option, `--batch
    abc`) become one line, exit 2."""
    # click's exception base, reached through typer's public BadParameter (typer >= 0.29 carries its own click)
    click_exception = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    quiet_libraries()
    try:
        code = app(standalone_mode=False)  # without standalone mode, click returns typer.Exit's code
    except (KeyboardInterrupt, typer.Abort):
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except click_exception as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `rtdetr-edge` or `rtdetr-edge data` alone: the help
            console.print(e.ctx.get_help())
            sys.exit(0)
        where = f" ({e.ctx.command_path})" if getattr(e, "ctx", None) is not None else ""
        err.print(f"[red]error:[/red] {escape(e.format_message())}{escape(where)}", markup=True, highlight=False,
                  soft_wrap=True)
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
