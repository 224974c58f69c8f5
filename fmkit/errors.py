"""The one exception type for problems a user can fix.

Every layer raises `FmkitError` (or a subclass) with a message that names the file,
row or column and says how to fix it. The CLI prints the message and exits with
`exit_code`; it never shows a traceback for these.
"""

from __future__ import annotations


class FmkitError(Exception):
    """A problem the user can fix: bad input, a missing file, an impossible option."""

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(FmkitError):
    """An invalid configuration file or command-line option."""


class DataError(FmkitError):
    """A data file that cannot be used as it is."""


class ModelError(FmkitError):
    """A model that cannot be found or loaded."""


class RenamedKeyWarning(FutureWarning):
    """A config key of an earlier release that still loads under its new name; the CLI prints it on one line."""
