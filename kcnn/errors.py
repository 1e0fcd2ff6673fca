"""kcnn's own error type for mistakes a user can fix.

A `UserError` says what was wrong with what the user gave -- an argument, a flag, a name, a file
-- and how to put it right; the ``kcnn`` command prints it as one line, without a traceback. Any
other exception is a bug (in kcnn, or in how it uses a library): the command lets it through with
its traceback and asks for a report (see `kcnn.cli.main`).

`UserError` is a ``ValueError``, so code that catches ``ValueError`` -- and every test written
before it existed -- sees kcnn's argument checks as before.

Example:
    >>> from kcnn import checks
    >>> try:
    ...     checks.positive_int("epochs", 0)
    ... except UserError as error:
    ...     error.argument
    'epochs'
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake the user can fix: a bad argument or value, an unknown name, missing data.

    Args:
        message: what was wrong and, where it helps, the choices or what to do.
        argument: the name of the argument at fault (``"norm"``, ``"epochs"``), when there is
            one; the ``kcnn`` command uses it to tell which flag gave the value.
    """

    def __init__(self, message: str, argument: str | None = None):
        super().__init__(message)
        self.argument = argument
