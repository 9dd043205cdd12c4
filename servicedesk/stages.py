"""Stage durations, recorded as each stage of a ticket closes (for the turnaround reports).

Called by the lifecycle for every event, in the event's transaction. Owned by the reports work
(issue 6); until then it records nothing.
"""


def on_event(ticket, event_row) -> None:
    return None
