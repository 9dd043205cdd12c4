"""Logs without personal data: no customer's link token, no query string (a phone number
looked up at the desk, a search), no client address in the development server's access log.

Used by gunicorn's access and error logs (gunicorn.conf.py) and by the app itself: Flask's
"Exception on /t/TOKEN [GET]", and the access log of ``flask run`` (``scripts/run``, the
embedded default a one-counter shop may run on).
"""
import logging
import re

# /t/<token>, /t/<token>/approve, /s/<token>: the token is the key to a customer's ticket.
# In a request's path (the access log) whatever follows /t/ or /s/ is replaced.
TOKEN_PATH = re.compile(r"(/[ts]/)[^/?#\s\"']+")
# In a message's text, only what looks like a link's token (letters and digits, 8 or more, up
# to the end of the path segment): "/srv/s/backup.db" is a file, and "/t/***" (a console SMS
# masks its link itself) is left as it is.
TOKEN_IN_TEXT = re.compile(r"(/[ts]/)[A-Za-z0-9]{8,40}(?=[/?#\s\"'),.;:]|$)")
# Any other long opaque path segment (a future reset link, a pasted token) is treated the same.
OPAQUE_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_-]{24,}(?=/|$)")
# a query after a path ("/desk/customer?phone=0912..."), not a question mark in a sentence
_QUERY = re.compile(r"(/[^\s\"?]*)\?(?=[^\s\"]*=)[^\s\"]*")
# werkzeug's access line: '127.0.0.1 - - [06/Dec/2026 20:20:00] "GET /t/X?q=1 HTTP/1.1" 200 -'
_DEV_ADDRESS = re.compile(r"^\S+ - - \[")


def scrub_path(path: str) -> str:
    """The path with its query dropped and the tokens of customer links replaced."""
    path = (path or "-").split("?", 1)[0]
    return OPAQUE_SEGMENT.sub(":token", TOKEN_PATH.sub(r"\1:token", path))


def scrub_text(value):
    """A log message's text with query strings dropped and customer tokens replaced."""
    if isinstance(value, str):
        return TOKEN_IN_TEXT.sub(r"\1:token", _QUERY.sub(r"\1", value))
    return value


class ScrubFilter(logging.Filter):
    """The same scrubbing for any record whose message holds a customer link or a query;
    the development server's access line also loses the client's address."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the handler's problem
            return True
        if "/" in message:
            record.msg, record.args = _DEV_ADDRESS.sub("- - - [", scrub_text(message)), None
        return True


def install() -> None:
    """Scrub every record the process writes: through the root logger's handlers (where the
    app's and werkzeug's records end), and werkzeug's own records where it keeps a handler of
    its own. Once, however many apps are created."""
    targets = [*logging.getLogger().handlers, logging.getLogger("werkzeug")]
    for target in targets:
        if not any(isinstance(f, ScrubFilter) for f in target.filters):
            target.addFilter(ScrubFilter())
