"""User-facing errors: one line, a distinct exit code, never a traceback."""


class KitError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits with `exit_code`."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(" ".join(str(message).split()))  # always one line
        if exit_code is not None:
            self.exit_code = exit_code


class DataError(KitError):
    """Bad or missing input data (file, row or column named in the message)."""

    exit_code = 3


class SubmissionError(KitError):
    """A submission that fails validation against the sample submission."""

    exit_code = 4


class OutputError(KitError, OSError):
    """An output that cannot be written (not a folder, no permission, disk full, read-only), path named.

    Also an OSError, so code that already handles OS errors on its writes keeps doing so."""

    exit_code = 5
