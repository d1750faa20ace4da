"""Errors a user can cause (bad paths, data, configs, sizes, checkpoints).

The CLI turns a :class:`UserError` into a one-line message and exit code 2. Anything else is a
bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input; the message names the offending file or field."""


def check_number(option: str, value, low=None, high=None, low_open=False):
    """A number a user set, within its range: NaN, infinities and out-of-range values are a UserError naming
    the option. None (not given) passes."""
    import math

    if value is None:
        return value
    if not math.isfinite(value):
        raise UserError(f"{option} must be a finite number, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise UserError(f"{option} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise UserError(f"{option} must be <= {high}, got {value}")
    return value
