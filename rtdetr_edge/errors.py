"""Errors a user can cause (bad paths, data, configs, sizes, checkpoints).

The CLI turns a :class:`UserError` into a one-line message and exit code 2. Anything else is a
bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input; the message names the offending file or field."""
