"""Errors the service facade raises; every interface maps them to its own shape (exit code, HTTP status)."""


class EmberError(Exception):
    """Base of the errors that carry a message meant for the user."""


class NotFoundError(EmberError):
    pass


class ConflictError(EmberError):
    pass


class InvalidInputError(EmberError):
    pass


class DatabaseUnavailable(EmberError):
    """The database cannot be reached or opened: a server that is down, a wrong URL or password."""


class BusyError(EmberError):
    """The local model's queue is full: the caller should retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
