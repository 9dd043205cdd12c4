"""Links that leave the shop: in SMS, on receipts and in QR codes."""
from flask import current_app, has_request_context, request


def public_base_url() -> str:
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base and has_request_context():
        base = request.host_url
    return (base or "http://localhost:5000").rstrip("/")


def tracking_url(ticket) -> str:
    return f"{public_base_url()}/t/{ticket.public_token}"


def desk_visit_url(visit) -> str:
    """The queue slip's QR code: for the desk's scanner (staff only), not the customer."""
    return f"{public_base_url()}/desk/visits/{visit.id}"


def survey_url(ticket) -> str:
    return f"{public_base_url()}/s/{ticket.public_token}"
