"""Failures talking to Kaggle: one line each, with its own exit code (the EXIT_* constants)."""

from __future__ import annotations

from kit.errors import KitError

EXIT_NO_CREDENTIALS = 20
EXIT_UNAUTHORIZED = 21  # 401: bad or stale key
EXIT_FORBIDDEN = 22  # 403: competition rules not accepted
EXIT_NOT_FOUND = 23  # 404: unknown or closed competition
EXIT_RATE_LIMITED = 24  # 429 after retries
EXIT_SERVER_ERROR = 25  # 5xx after retries, or an upload Kaggle did not take
EXIT_OFFLINE = 26  # connection refused, DNS failure, timeout, dropped connection
EXIT_LIMIT_REACHED = 27  # daily submission limit
EXIT_DUPLICATE = 28  # file already submitted (needs --force)
EXIT_SCORING_FAILED = 29  # Kaggle could not score the submission
EXIT_STILL_PENDING = 30  # --wait gave up before Kaggle scored it
EXIT_KAGGLE_OTHER = 31  # any other answer from Kaggle


class KaggleError(KitError):
    """A failure talking to Kaggle (one line, distinct exit code)."""

    exit_code = EXIT_KAGGLE_OTHER
    retriable = False


class NoCredentials(KaggleError):
    """No credentials found (the message says how to set them)."""

    exit_code = EXIT_NO_CREDENTIALS


class Unauthorized(KaggleError):
    """HTTP 401: the key or token is wrong, expired or revoked."""

    exit_code = EXIT_UNAUTHORIZED


class Forbidden(KaggleError):
    """HTTP 403: the competition's rules have not been accepted."""

    exit_code = EXIT_FORBIDDEN


class NotFound(KaggleError):
    """HTTP 404: unknown or closed competition."""

    exit_code = EXIT_NOT_FOUND


class RateLimited(KaggleError):
    """HTTP 429, still after the retries."""

    exit_code = EXIT_RATE_LIMITED
    retriable = True


class ServerError(KaggleError):
    """HTTP 5xx (or an upload Kaggle did not take), still after the retries."""

    exit_code = EXIT_SERVER_ERROR
    retriable = True


class Offline(KaggleError):
    """Kaggle cannot be reached: refused, DNS failure, timeout or dropped connection."""

    exit_code = EXIT_OFFLINE
    retriable = True


class LimitReached(KaggleError):
    """The daily (or lifetime) submission limit is used up."""

    exit_code = EXIT_LIMIT_REACHED


class Duplicate(KaggleError):
    """This exact file was already submitted to the competition."""

    exit_code = EXIT_DUPLICATE


class ScoringFailed(KaggleError):
    """Kaggle could not score the submission."""

    exit_code = EXIT_SCORING_FAILED


class StillPending(KaggleError):
    """Kaggle had not scored the submission when --wait gave up."""

    exit_code = EXIT_STILL_PENDING
