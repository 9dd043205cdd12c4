"""Delivery reports from the SMS provider (Twilio's status callback)."""
from flask import Blueprint, abort, current_app, request
from twilio.request_validator import RequestValidator

from ..extensions import csrf, limiter
from ..links import public_base_url
from ..notifications.delivery import apply_status_callback

bp = Blueprint("sms", __name__, url_prefix="/sms")


def _signature_valid() -> bool:
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    validator = RequestValidator(token)
    # Twilio signs the URL it was given (built from PUBLIC_BASE_URL); behind a proxy the URL
    # this process sees may differ, so either is accepted.
    urls = {request.url, f"{public_base_url()}{request.full_path.rstrip('?')}"}
    return any(validator.validate(url, request.form, signature) for url in urls)


@bp.post("/status")
@csrf.exempt
@limiter.exempt
def status_callback():
    if not _signature_valid():
        abort(403)
    sid = request.form.get("MessageSid") or request.form.get("SmsSid")
    status = request.form.get("MessageStatus") or request.form.get("SmsStatus")
    if not sid or not status:
        abort(400)
    # ``n``: the notification's id, put in the callback URL by the sender (and covered by the
    # signature), so a report that overtakes the sender's own record of the sid is applied
    # to its row instead of being lost.
    if not apply_status_callback(sid, status, request.form.get("ErrorCode"),
                                 request.args.get("n", type=int)):
        current_app.logger.info("delivery report for unknown message %s (%s) ignored",
                                sid, status)
    # Always 204 for a signed report, known id or not. A non-2xx would not bring the report
    # back: by default Twilio retries a messaging status callback only when it cannot connect
    # (connection-override defaults rp=ct, rc=1; retrying on 5xx needs a "#rp=5xx&rc=.."
    # fragment in the URL), and logs the error (11200/11217) in the account's debugger.
    return "", 204
