"""rq hand-off (when REDIS_URL is set). Jobs take ids, never ORM objects."""
import logging
from typing import Iterable

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

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


def enqueue(app, ids: Iterable[int]) -> None:
    q = get_queue(app)
    for nid in ids:
        try:
            # A unique id per row: the sweep and the after-commit hook never queue it twice;
            # the database claim makes a second run harmless anyway.
            q.enqueue("servicedesk.notifications.jobs.send_notification", nid,
                      job_id=f"sms-{nid}", unique=True,
                      retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
                      job_timeout=60, result_ttl=0, failure_ttl=300)
        except DuplicateJobError:
            pass
