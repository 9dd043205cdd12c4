"""The administrator's webhook endpoints: register, change, rotate the secret, send a failed
delivery again, delete. Every change is in the admin audit log (never the secret)."""
from __future__ import annotations

import ipaddress
import secrets
from typing import Any, Optional
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select, update

from .. import audit
from ..errors import Conflict, NotFound, ValidationError
from ..extensions import db
from ..models import utcnow
from ..models.webhooks import WebhookDelivery, WebhookEndpoint
from ..notifications import webhooks
from .admin import _by_id, committing

SECRET_PREFIX = "whsec_"
RECENT = 20  # deliveries listed per endpoint


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _local_host(host: str) -> bool:
    """This machine: where a receiver needs no TLS (nothing crosses a network)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shop_lan_host(host: str) -> bool:
    """The shop's own network: a private address, or a name with no dot or under .local/.lan
    (the accounting PC in the back office)."""
    try:
        return ipaddress.ip_address(host).is_private
    except ValueError:
        return "." not in host or host.endswith((".local", ".lan", ".home.arpa"))


def check_url(raw: Any) -> str:
    """The URL as saved, or ValueError saying why not.

    http or https only, with a host, and no user name or password in it (they would show in
    the page and the audit log: the signature is the receiver's proof). Plain http is taken
    for this machine (localhost), and, in the embedded default (no REDIS_URL: one shop's
    server on its own network), for the shop's network too, where the accounting PC has no
    certificate; anywhere else the body (amounts, repairs) would cross networks in clear,
    so https is required."""
    url = (raw or "").strip() if isinstance(raw, str) else ""
    if not url:
        raise ValueError(_("Enter the receiver's address."))
    if len(url) > 500:
        raise ValueError(_("At most 500 characters."))
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValueError(_("This is not a web address.")) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(_("The address must start with https:// (or http://) and name a "
                           "host."))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError(_("Leave the user name and password out of the address: each "
                           "delivery is signed with the secret instead."))
    if parts.fragment:
        raise ValueError(_("The address may not have a # part."))
    if parts.scheme == "http" and not _local_host(host):
        embedded = not current_app.config.get("REDIS_URL")
        if not (embedded and _shop_lan_host(host)):
            raise ValueError(_("Use https:// for a receiver outside this machine and the "
                               "shop's network: the deliveries must not cross the internet "
                               "in clear."))
    return url


def _clean(errors: dict, name, url, events, every_event) -> tuple:
    name = (name or "").strip() if isinstance(name, str) else ""
    if len(name) > 120:
        errors["name"] = _("At most 120 characters.")
    try:
        url = check_url(url)
    except ValueError as exc:
        errors["url"] = str(exc)
    if every_event:
        events = None
    else:
        events = [e for e in webhooks.EVENTS if e in set(events or ())]
        if not events:
            errors["events"] = _("Choose the events it hears about, or all of them.")
    return name, url, events


def _values(endpoint: WebhookEndpoint) -> dict:
    return {"name": endpoint.name, "url": endpoint.url, "events": endpoint.events or "all",
            "active": endpoint.active}


def check(*, name, url, events, every_event) -> None:
    """The form's values checked, nothing changed (ValidationError naming the fields)."""
    errors: dict = {}
    _clean(errors, name, url, events, every_event)
    if errors:
        raise ValidationError(_("Some fields are not valid."), fields=errors)


def save_endpoint(endpoint_id: Optional[int], *, name, url, events, every_event,
                  active) -> tuple[WebhookEndpoint, Optional[str]]:
    """Create (``endpoint_id`` None) or change an endpoint. Returns it and, for a new one, its
    secret (shown once)."""
    errors: dict = {}
    name, url, events = _clean(errors, name, url, events, every_event)
    if errors:
        raise ValidationError(_("Some fields are not valid."), fields=errors)
    secret = None
    with committing():
        if endpoint_id is None:
            secret = new_secret()
            endpoint = WebhookEndpoint(name=name, url=url, events=events, active=bool(active),
                                       secret=secret)
            db.session.add(endpoint)
            db.session.flush()
            audit.log("webhook.create", obj=endpoint, after=_values(endpoint))
        else:
            endpoint = _live(endpoint_id)
            before = _values(endpoint)
            endpoint.name, endpoint.url, endpoint.events = name, url, events
            endpoint.active, endpoint.updated_at = bool(active), utcnow()
            old, new = audit.changes(before, _values(endpoint))
            if new:
                audit.log("webhook.update", obj=endpoint, before=old, after=new)
    return endpoint, secret


def rotate_secret(endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new secret for the endpoint (the old one stops at once); shown once."""
    with committing():
        endpoint = _live(endpoint_id)
        endpoint.secret = secret = new_secret()
        endpoint.updated_at = utcnow()
        audit.log("webhook.rotate", obj=endpoint, after={"url": endpoint.url})
    return endpoint, secret


def delete_endpoint(endpoint_id: int) -> tuple[WebhookEndpoint, int]:
    """Delete an endpoint: nothing more is written or sent to it. Its row stays, switched off
    with its secret wiped (a stolen copy of the database signs nothing for it), so that its
    deliveries keep naming it: what was sent to the receiver and what never was stays on its
    page for whoever reconciles the receiver's books later. The deliveries still waiting
    (pending or due for a retry) are cancelled with the reason; one being posted at this
    moment is finished by its sender, as sent or not, and one left for a retry is cancelled
    by it. Returns the endpoint and how many were cancelled."""
    with committing():
        endpoint = _live(endpoint_id)
        before = _values(endpoint)
        now = utcnow()
        cancelled = db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id,
                   WebhookDelivery.status.in_(("pending", "retry")))
            .values(status="cancelled", error=webhooks.DELETED, next_attempt_at=None,
                    updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        endpoint.active, endpoint.secret = False, ""
        endpoint.deleted_at = endpoint.updated_at = now
        audit.log("webhook.delete", obj=endpoint, before=before,
                  after={"cancelled_deliveries": cancelled})
    return endpoint, cancelled


def get_endpoint(endpoint_id) -> WebhookEndpoint:
    """An endpoint, deleted or not (a deleted one's page shows its deliveries)."""
    endpoint = _by_id(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(_("No such webhook."))
    return endpoint


def _live(endpoint_id) -> WebhookEndpoint:
    """An endpoint that is not deleted, to change: Conflict for a deleted one."""
    endpoint = get_endpoint(endpoint_id)
    if endpoint.deleted_at is not None:
        raise Conflict(_("This webhook was deleted; add a new one instead."))
    return endpoint


def list_endpoints() -> list[tuple[WebhookEndpoint, int]]:
    """Every endpoint with how many of its deliveries failed (the deleted ones last)."""
    failed = dict(db.session.execute(
        select(WebhookDelivery.endpoint_id, func.count(WebhookDelivery.id))
        .where(WebhookDelivery.status == "failed").group_by(WebhookDelivery.endpoint_id)).all())
    rows = db.session.scalars(select(WebhookEndpoint).order_by(
        WebhookEndpoint.deleted_at.is_not(None), WebhookEndpoint.id)).all()
    return [(e, failed.get(e.id, 0)) for e in rows]


# a delivery's note in the shop's words, for the endpoint's page
explain_error = webhooks.explain


def recent_deliveries(endpoint_id: int, limit: int = RECENT) -> list[WebhookDelivery]:
    return list(db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc()).limit(limit)))


def resend(endpoint_id: int, delivery_id: int) -> WebhookDelivery:
    """Send a failed delivery again, with its attempts anew (the same body and delivery id:
    a receiver that had it drops the copy)."""
    with committing():
        row = _by_id(WebhookDelivery, delivery_id)
        if row is None or row.endpoint_id != endpoint_id:
            raise NotFound(_("No such delivery."))
        _live(endpoint_id)
        if row.status != "failed":
            raise ValidationError(_("Only a failed delivery can be sent again."))
        row.status, row.attempts, row.next_attempt_at = "pending", 0, None
        row.updated_at = utcnow()
        audit.log("webhook.resend", obj=("webhook_deliveries", row.id),
                  after={"event": row.event, "error": row.error})
        webhooks.written(db.session(), row.id)
    return row
