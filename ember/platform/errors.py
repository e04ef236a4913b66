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
