"""Stage durations: the data the turnaround reports read (issue 6).

Recomputing per-stage percentiles from the event log means pairing events with window functions
over every event of the range (about 9 s on PostgreSQL for a year of 1M tickets); storing each
stage's duration once, when the stage closes, turns the report into one indexed scan of small
rows. ``servicedesk.stages.on_event`` writes these rows in the event's transaction.

The dimensions the report filters on (branch, technician, service type, device brand) are copied
here as the stage closes, so the report never joins the tickets: the technician is the one
assigned when the stage closed.

This module also declares the indexes the reports need on other aggregates' tables (the event
log, visits, notifications); they are created by migration 0002 and named for the query they
serve.
"""
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._types import UTCDateTime
from .notifications import Notification
from .tickets import CostLine, TicketEvent
from .visits import Visit

# The stages of DESIGN section 5, in the order a ticket goes through them.
STAGES = ("queue_wait", "intake", "diagnosis", "approval", "repair", "waiting_parts", "pickup",
          "total")


class TicketStage(db.Model):
    """One closed stage of one ticket: when it started and ended, and how long it took.

    ``seconds`` is whole seconds (end minus start, each truncated to the second); for ``repair``
    it excludes the time spent waiting for parts, and ``waiting_parts`` is the sum of the
    ticket's waits (from the first wait to the last resume). ``end_event`` is the event that
    closed the stage (``approve`` or ``decline`` for the approval stage).
    """

    __tablename__ = "ticket_stages"
    __table_args__ = (UniqueConstraint("ticket_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    stage: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seconds: Mapped[int]
    end_event: Mapped[str] = mapped_column(String(24))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    technician_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    service_type: Mapped[str] = mapped_column(String(40))
    brand: Mapped[str] = mapped_column(String(60))


# Turnaround over a date range: the stages whose end falls in the range, in seconds order per
# stage; covering (started_at for the other end of the range, seconds for the percentiles), so
# PostgreSQL answers from the index alone.
Index("ix_ticket_stages_turnaround", TicketStage.stage, TicketStage.ended_at,
      TicketStage.started_at, TicketStage.seconds)
# The technicians report and the turnaround filtered by technician.
Index("ix_ticket_stages_technician", TicketStage.technician_id, TicketStage.stage,
      TicketStage.ended_at)

# Tickets admitted / delivered in a range (costs, survey, dashboard): the event log by event
# and time, carrying the ticket id so no table lookup is needed.
Index("ix_ticket_events_report", TicketEvent.event, TicketEvent.at, TicketEvent.ticket_id)
# Costs: the lines of the tickets admitted in a range, read from the index alone.
Index("ix_cost_lines_report", CostLine.ticket_id, CostLine.stage, CostLine.kind,
      CostLine.estimate_version, CostLine.qty, CostLine.unit_price)
# Queue report: visits issued in a range.
Index("ix_visits_queue_report", Visit.issued_at)
# SMS report: notifications written in a range.
Index("ix_notifications_sms_report", Notification.created_at)
