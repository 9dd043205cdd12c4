"""htmx requests: the polled and swapped fragments of the desk, the queue, the wall display and
the worklist."""
from urllib.parse import urlsplit

from flask import request, url_for


def hx() -> bool:
    """Whether the request came from htmx (a fragment, not a whole page)."""
    return bool(request.headers.get("HX-Request"))


def login_redirect_whole_page(resp):
    """A blueprint's after_request: a polled fragment whose session ended sends the whole page
    to the login form (not the login page swapped into a corner of the screen), and back to
    that page after the login, not to the bare fragment (the wall display came back as the
    board's unstyled text, frozen)."""
    if hx() and resp.status_code in (301, 302) and "/login" in (resp.location or ""):
        page = urlsplit(request.headers.get("HX-Current-URL") or "")
        here = urlsplit(request.host_url)
        same_site = (page.scheme, page.netloc) == (here.scheme, here.netloc)
        path = page.path + (f"?{page.query}" if page.query else "")
        resp.status_code = 204
        resp.headers["HX-Redirect"] = url_for("auth.login", next=path) \
            if same_site and path.startswith("/") else resp.location
    return resp
