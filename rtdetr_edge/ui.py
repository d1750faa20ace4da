"""What a person sees while long work runs: one progress helper for training, QAT and the quickstart.

rich only (a core dependency); the library functions take an optional `progress` callback or a Console and
never print on their own.
"""

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def fit_with_progress(trainer, console: Console, label: str = "", transient: bool = False, say_epochs: bool = True):
    """trainer.fit under a progress bar (epoch, losses, speed) with one line per evaluation. `label` prefixes
    the bar (the quickstart's step); transient=True leaves no bar behind. Returns trainer.fit's history."""
    epochs = trainer.cfg.epochs
    limit = trainer.cfg.time_limit_min
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[losses]}"), TextColumn("{task.fields[speed]}"), TimeElapsedColumn(),
               TimeRemainingColumn()]
    quiet = getattr(trainer, "rank", 0) != 0

    def epoch_text():
        total = f"/{epochs}" if not limit else ""
        return f"{label + ' ' if label else ''}epoch {trainer.epoch + 1}{total}"

    with Progress(*columns, console=console, disable=quiet, transient=transient) as progress:
        task = progress.add_task(epoch_text(), total=None, losses="", speed="")

        def on_step(i, n, losses, speed):
            text = " ".join(f"{k[5:] or 'loss'} {v:.3f}" for k, v in losses.items() if k.startswith("loss"))
            progress.update(task, completed=i, total=n, description=epoch_text(), losses=text,
                            speed=f"{speed:.1f} img/s")

        def on_epoch(row, metrics):
            if not say_epochs:
                return
            ap = f"AP {metrics['AP']:.3f} AP50 {metrics['AP50']:.3f} AP75 {metrics['AP75']:.3f}"
            if "train_loss" not in row:  # QAT's evaluation of the calibrated model before any step
                progress.console.print(f"calibrated INT8 before fine-tuning (the PTQ baseline): {ap}", highlight=False)
                return
            progress.console.print(
                f"epoch {row['epoch']}{'/' + str(epochs) if not limit else ''}: loss {row['train_loss']:.3f}, "
                f"{row['train_images_per_s']:.2f} img/s, {ap} ({row['minutes']:.1f} min)", highlight=False)
            progress.reset(task, total=None)

        return trainer.fit(on_step, on_epoch)
