"""rq hand-off (when REDIS_URL is set). Jobs take ids, never ORM objects."""
import logging
from typing import Iterable, Optional

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from .backends import TwilioBackend
from .delivery import SEND_MARGIN, send_limit

LOOKUP_PAGES = TwilioBackend.LOOKUP_PAGES

log = logging.getLogger(__name__)
QUEUE_NAME = "servicedesk-sms"
RETRY_INTERVALS = [10, 60, 300, 900, 3600]


def get_queue(app) -> Queue:
    q = app.extensions.get("servicedesk_rq_queue")
    if q is None:
        conn = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=2,
                              socket_timeout=5)
        q = Queue(app.config.get("RQ_QUEUE", QUEUE_NAME), connection=conn)
        app.extensions["servicedesk_rq_queue"] = q
    return q


def enqueue(app, ids: Iterable[int], attempts: Optional[dict] = None) -> None:
    """Queue one job per row. The job id names the row and its attempts so far: the sweep and
    the after-commit hook never queue the same attempt twice, while a row whose worker died
    (its old job still registered as started) can be queued again. The database claim makes a
    second run of any job harmless anyway, and sends a row only when it is due.

    rq's own retries take the intervals still ahead of the row (a job queued after two
    attempts waits the third interval, as the row does), so they come when the row is due
    and none after its last attempt."""
    q = get_queue(app)
    # rq kills a job past its timeout: one killed while its send waits for the answer leaves
    # the row "sending", sent again by the sweep (after asking Twilio, with Twilio); with
    # Twilio a job may first ask (each page of the lookup as long as a send), then send
    requests_ = 1 + (LOOKUP_PAGES if app.config.get("SMS_BACKEND") == "twilio" else 0)
    job_timeout = max(int(app.config.get("SMS_JOB_TIMEOUT", 60)),
                      int(send_limit(app.config)) * requests_ + SEND_MARGIN)
    intervals = list(app.config.get("SMS_RETRY_INTERVALS") or RETRY_INTERVALS)
    _enqueue_each(q, "servicedesk.notifications.jobs.send_notification", "sms", ids, attempts,
                  intervals, job_timeout)


def _enqueue_each(q: Queue, job: str, kind: str, ids: Iterable[int],
                  attempts: Optional[dict], intervals: list, job_timeout: int) -> None:
    """One ``job`` per row id, named by the row and its attempts so far, with rq's retries at
    the intervals still ahead of the row (``enqueue``)."""
    for rid in ids:
        tries = (attempts or {}).get(rid, 0)
        ahead = intervals[tries:]
        try:
            q.enqueue(job, rid, job_id=f"{q.name}-{kind}-{rid}-{tries}", unique=True,
                      retry=Retry(max=len(ahead), interval=ahead) if ahead else None,
                      job_timeout=job_timeout, result_ttl=0, failure_ttl=24 * 3600)
        except DuplicateJobError:
            pass


def enqueue_webhooks(app, ids: Iterable[int], attempts: Optional[dict] = None) -> None:
    """Queue one job per webhook delivery on the SMS queue (the same workers run them), with
    rq's retries at the intervals still ahead of the row, as ``enqueue`` does for an SMS."""
    from .webhooks import DEFAULT_RETRY_INTERVALS, DEFAULT_TIMEOUT
    q = get_queue(app)
    job_timeout = 2 * int(float(app.config.get("WEBHOOK_TIMEOUT") or DEFAULT_TIMEOUT)) + 30
    intervals = app.config.get("WEBHOOK_RETRY_INTERVALS")
    intervals = list(DEFAULT_RETRY_INTERVALS if intervals is None else intervals)
    _enqueue_each(q, "servicedesk.notifications.jobs.send_webhook", "webhook", ids, attempts,
                  intervals, job_timeout)
