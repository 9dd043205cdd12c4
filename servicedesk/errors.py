"""The few named exceptions domain code raises; each blueprint turns them into a response."""
from typing import Optional


class DomainError(Exception):
    status = 400
    # HTTP headers the error's answer carries (a 401's WWW-Authenticate)
    headers: dict = {}

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = str(message)
        self.extra = extra

    def to_dict(self) -> dict:
        return {"error": self.message, **self.extra}


class ValidationError(DomainError):
    """Bad input: ``fields`` maps each offending field to what is wrong with it."""

    status = 422

    def __init__(self, message: str, fields: Optional[dict] = None, **extra):
        super().__init__(message, fields={k: str(v) for k, v in (fields or {}).items()},
                         **extra)
        self.fields = self.extra["fields"]


class TransitionNotAllowed(DomainError):
    """The event is not allowed from the ticket's current state."""

    status = 409

    def __init__(self, message: str, state: str, allowed: list[str]):
        super().__init__(message, state=state, allowed=allowed)
        self.state = state
        self.allowed = allowed


class Conflict(DomainError):
    """Someone else changed the ticket first."""

    status = 409


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404
