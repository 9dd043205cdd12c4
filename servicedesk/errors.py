"""The few named exceptions domain code raises; each blueprint turns them into a response.

Each has a ``code``, the JSON error's machine-readable kind (the ``error`` text is in the
user's language; a client tells errors apart by the code): the API's documented list is
``ERROR_CODES``."""
from typing import Optional


class DomainError(Exception):
    status = 400
    code = "bad_request"
    # HTTP headers the error's answer carries (a 401's WWW-Authenticate)
    headers: dict = {}

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = str(message)
        self.extra = extra

    def to_dict(self) -> dict:
        return {"error": self.message, "code": self.code, **self.extra}


class ValidationError(DomainError):
    """Bad input: ``fields`` maps each offending field to what is wrong with it."""

    status = 422
    code = "invalid"

    def __init__(self, message: str, fields: Optional[dict] = None, **extra):
        super().__init__(message, fields={k: str(v) for k, v in (fields or {}).items()},
                         **extra)
        self.fields = self.extra["fields"]


class UnknownFields(ValidationError):
    """A request body holding fields its endpoint does not read (a misspelt optional field,
    dropped, would have the request do something else than asked): 400, ``fields`` naming
    each (``unknown`` lists them); nothing is done."""

    status = 400

    def __init__(self, message: str, fields: dict):
        super().__init__(message, fields=fields, unknown=list(fields))


class OutOfRange(ValidationError):
    """A query's paging argument outside what the endpoint serves (``limit`` 1000): 400,
    ``fields`` naming each with its range, ``ranges`` the same for a machine; rather than
    answering as if another value had been sent."""

    status = 400

    def __init__(self, message: str, fields: dict, ranges: dict):
        super().__init__(message, fields=fields, ranges=ranges)


class TransitionNotAllowed(DomainError):
    """The event is not allowed from the ticket's current state."""

    status = 409
    code = "transition_not_allowed"

    def __init__(self, message: str, state: str, allowed: list[str]):
        super().__init__(message, state=state, allowed=allowed)
        self.state = state
        self.allowed = allowed


class Conflict(DomainError):
    """What the request asks clashes with what is there now (someone else changed it first,
    a number already served, a loaner already out...)."""

    status = 409
    code = "conflict"


class StaleVersion(Conflict):
    """The ticket is not at the version the client's screen or request showed."""

    code = "stale_version"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


# The ``code`` of the API's errors, by HTTP status where the status names the kind (the
# answers Flask itself gives: an unknown address, a method, a body too large, too many
# requests) and by the domain error raised otherwise.
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large", 429: "rate_limited",
              500: "server_error"}
ERROR_CODES = ("invalid", "transition_not_allowed", "stale_version", "conflict",
               *HTTP_CODES.values())
