"""The sandbox's error answer, shared by its API modules."""

from __future__ import annotations


class HttpError(Exception):
    """An error answered as Kaggle does: JSON {"code", "message"} with that HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
