"""import-history: past tickets from JSON Lines, replayed through the lifecycle.

Each line is one ticket (DESIGN section 5). Its events replay through the same rules as live
ones (an impossible sequence is an error), keep their own timestamps and send no SMS. A line is
imported whole or not at all (one transaction per line); a ticket whose ``external_id`` is
already here is skipped, so re-running an import is harmless. A timestamp in the future
refuses its line (history has happened); cost lines no event takes (final lines of a ticket
never finished) are reported with the line's number, the rest of the ticket imported.
"""
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Iterable, Optional

from flask_babel import gettext as _
from sqlalchemy import select

from .. import lifecycle, persist
from ..counters import next_value
from ..errors import DomainError, ValidationError
from ..extensions import db
from ..lifecycle import Actor
from ..models import Branch, SurveyResponse, Ticket, User, Visit, utcnow
from ..visits import SERVICES, queue_day
from .loaners import back_with, lend_loaded, return_loaded
from .tickets import build_ticket, clean_intake, default_branch


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    # (line number, what of it was not imported): the line itself was
    warnings: list[tuple[int, str]] = field(default_factory=list)


def _when(raw, what: str) -> datetime:
    if not isinstance(raw, str):
        raise ValidationError(_("%(what)s: a timestamp (ISO 8601) is required.", what=what))
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(_("%(what)s: not an ISO 8601 timestamp.", what=what)) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if value > utcnow():  # history has happened: a date typed wrong, a clock off
        raise ValidationError(_("%(what)s: %(when)s is in the future.", what=what, when=raw))
    return value.astimezone(timezone.utc)


def _actor(name: Optional[str], rule) -> Actor:
    if name in ("customer", "system"):
        return Actor.customer() if name == "customer" else Actor.system()
    user = db.session.scalar(select(User).where(User.username == name)) if name else None
    if user is not None:
        return Actor.staff(user)
    # Staff from the old system who have no account here: recorded by name, with the role
    # the event asks for (the state rules still apply in full).
    role = sorted(r for r in rule.roles if r in lifecycle.STAFF_ROLES) or sorted(rule.roles)
    kind = "staff" if role[0] in lifecycle.STAFF_ROLES else role[0]
    return Actor(kind, role[0], name or "import")


def _branch(name: Optional[str]) -> Branch:
    if not name:
        return default_branch()
    branch = db.session.scalar(select(Branch).where((Branch.name == name) | (Branch.code == name)))
    if branch is None:
        raise ValidationError(_("Unknown branch %(name)s.", name=name))
    return branch


def import_record(record: dict, warnings: Optional[list] = None) -> bool:
    """Add one ticket from a parsed line (no commit). False when it was imported before.
    ``warnings`` gets what of the line was not imported (cost lines no event takes)."""
    if not isinstance(record, dict):
        raise ValidationError(_("Each line must be a JSON object."))
    external_id = record.get("external_id")
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        # the old system's numeric id: the same ticket as its id written as text
        external_id = str(external_id)
    if external_id is None or (isinstance(external_id, str) and not external_id.strip()):
        raise ValidationError(_("external_id is required."))
    if not isinstance(external_id, str):
        raise ValidationError(_("external_id must be text or a whole number."))
    if len(external_id) > Ticket.external_id.type.length:
        raise ValidationError(_("external_id: at most %(n)s characters.",
                                n=Ticket.external_id.type.length))
    if db.session.scalar(select(Ticket.id).where(Ticket.external_id == external_id)):
        return False
    events = record.get("events")
    if not isinstance(events, list) or not events:
        raise ValidationError(_("events: a list starting with admit is required."))
    if not isinstance(events[0], dict) or events[0].get("event") != "admit":
        raise ValidationError(_("The first event must be admit."))

    branch = _branch(record.get("branch"))
    intake = {k: record.get(k) for k in ("customer", "device", "problem", "service_type",
                                         "accessories", "condition", "promised_date")
              if record.get(k) is not None}
    clean = clean_intake(intake)
    admitted_at = _when(events[0].get("at"), "events[1].at")
    ticket = build_ticket(clean, branch, at=admitted_at, external_id=external_id)
    admit_data = {"device": ticket.device.label, "problem": ticket.problem,
                  "service_type": ticket.service_type, "imported": True}

    visit_rec = record.get("visit")
    if visit_rec is not None:
        if not isinstance(visit_rec, dict):
            raise ValidationError(_("visit must be an object."))
        issued = _when(visit_rec.get("issued_at"), "visit.issued_at")
        called = _when(visit_rec.get("called_at"), "visit.called_at") \
            if visit_rec.get("called_at") else admitted_at
        if not issued <= called <= admitted_at:
            raise ValidationError(_("visit: issued_at, called_at and the admit event must be in "
                                    "time order."))
        service = visit_rec.get("service", "repair")
        if service not in SERVICES:
            raise ValidationError(_("visit.service: unknown service."))
        day = queue_day(issued)
        number = next_value(f"visit:{branch.id}:{day.isoformat()}:{service}")
        visit = Visit(branch_id=branch.id, service=service, day=day, number=number,
                      label=f"{SERVICES[service][0]}-{number:03d}", status="served",
                      issued_at=issued, called_at=called, served_at=admitted_at,
                      counter=str(visit_rec.get("counter") or ""))
        persist.link(ticket, "visit", persist.insert(visit))
        ticket.created_at = issued
        admit_data["visit"] = visit.label
        admit_data["waited_seconds"] = int((admitted_at - issued).total_seconds())

    lines = record.get("lines") or []
    if not isinstance(lines, list):
        raise ValidationError(_("lines must be a list."))
    by_stage = {"estimate": [], "final": []}
    numbers = {"estimate": [], "final": []}  # each stage's lines by place in "lines", from 1
    for place, line in enumerate(lines, start=1):
        if not isinstance(line, dict) or line.get("stage") not in by_stage:
            raise ValidationError(_("Each line needs a stage: estimate or final."))
        by_stage[line["stage"]].append({k: line.get(k) for k in ("kind", "description", "qty",
                                                                 "unit_price")})
        numbers[line["stage"]].append(place)
    taken = set()  # the stages whose lines an event took

    # Who repaired it may have left the shop (a deactivated account) or never had an account
    # here: their history imports all the same. A former technician's account is credited
    # (an "assign" record); a name with no account is kept in the admit's data.
    technician = record.get("technician")
    named = {technician, *(ev.get("data", {}).get("technician") for ev in events
                           if isinstance(ev, dict) and ev.get("event") == "send_to_repair"
                           and isinstance(ev.get("data"), dict))} - {None, ""}
    accounts = {u.username: u for u in db.session.scalars(
        select(User).where(User.username.in_([str(n) for n in named]),
                           User.role == "technician"))}
    former = {n for n in named if n in accounts and not accounts[n].active}
    unknown = sorted(str(n) for n in named if n not in accounts)
    if unknown:
        admit_data["technician_name"] = ", ".join(unknown)[:200]
    survey_id = None
    survey = record.get("survey")
    previous_at = None
    for index, ev in enumerate(events, start=1):
        if not isinstance(ev, dict) or not isinstance(ev.get("event"), str):
            raise ValidationError(_("events[%(n)s]: an object with an event name is required.",
                                    n=index))
        name = ev["event"]
        rule = lifecycle.EVENTS.get(name) or (_LOANER_RULE if name in LOAN_RECORDS else None)
        if rule is None:
            raise ValidationError(_("events[%(n)s]: unknown event %(event)s.", n=index,
                                    event=name))
        at = _when(ev.get("at"), f"events[{index}].at")
        if previous_at is not None and at < previous_at:
            # time running backwards would give negative stage durations in the reports
            raise ValidationError(_("events[%(n)s].at is earlier than the event before it.",
                                    n=index))
        previous_at = at
        data = dict(ev.get("data") or {})
        if name in LOAN_RECORDS:
            _loan_record(ticket, name, index, _actor(ev.get("actor"), rule), data, at)
            continue
        if name == "admit":
            if index != 1:
                raise ValidationError(_("events[%(n)s]: admit may only come first.", n=index))
            data = admit_data
        elif name == "send_to_repair" and technician and "technician" not in data:
            data["technician"] = technician
        elif name == "quote" and "lines" not in data:
            data["lines"] = by_stage["estimate"]
            taken.add("estimate")
        elif name == "finish" and "lines" not in data:
            data["lines"] = by_stage["final"]
            taken.add("final")
        elif name == "approve" and "channel" not in data:
            data["channel"] = "in_person"
        elif name == "decline":
            data.setdefault("channel", "in_person")
            data.setdefault("reason", "-")
        elif name == "deliver" and "amount_paid" not in data:
            data["amount_paid"] = ticket.final_total or 0
        elif name == "close" and isinstance(survey, dict):
            response = _survey(ticket, survey)
            db.session.flush()
            survey_id = response.id
            data.setdefault("survey_response_id", survey_id)
        holder = None
        if name == "send_to_repair" and data.get("technician") in {*former, *unknown}:
            holder = accounts.get(data.pop("technician"))
        actor = _actor(ev.get("actor") or ("customer" if name == "close" and survey else
                                            "system" if name == "close" else None), rule)
        try:
            if name in lifecycle.LOANER_BACK_WITH:
                # a loaner out comes back with the hand-back or the cancel, as live
                back_with(ticket, name, actor, data, data.pop("loaner_returned", None) is True,
                          at=at, notify=False)
            lifecycle.fire(ticket, name, actor, data, at=at, notify=False)
            if holder is not None:
                lifecycle.record(ticket, "assign", actor,
                                 {"technician": holder.username, "imported": True},
                                 at=at, notify=False, technician=holder)
        except DomainError as exc:
            raise type(exc)(_("events[%(n)s] (%(event)s): %(problem)s", n=index, event=name,
                              problem=exc.message), **_extra(exc)) from None
    if survey is not None and ticket.state not in ("delivered", "closed"):
        raise ValidationError(_("survey: only a device handed back has a survey; this "
                                "ticket's events end in %(state)s.",
                                state=lifecycle.STATE_LABELS.get(ticket.state, ticket.state)))
    if isinstance(survey, dict) and survey_id is None:
        _survey(ticket, survey)
    for stage, event in (("estimate", "quote"), ("final", "finish")):
        if numbers[stage] and stage not in taken and warnings is not None:
            warnings.append(_(
                "lines %(numbers)s (%(stage)s): no %(event)s event takes them (there is none, "
                "or it has lines of its own); not imported.",
                numbers=", ".join(str(n) for n in numbers[stage]), stage=stage, event=event))
    return True


# A loaner phone lent and taken back (records of the trail, not lifecycle events), typed as
# text: the phones of the shop's list now are not those of its past.
LOAN_RECORDS = ("lend_loaner", "return_loaner")
_LOANER_RULE = SimpleNamespace(roles=lifecycle.LOANER_ROLES)


def _loan_record(ticket: Ticket, name: str, index: int, actor: Actor, data: dict,
                 at: datetime) -> None:
    """events[index] a loan's ``lend_loaner`` (``{"description", "serial"?, "condition"?}``)
    or ``return_loaner`` (``{"condition"?, "note"?}``) at its own time, by the same rules as
    live (the ticket open, one out at a time)."""
    try:
        if actor.kind != "staff":
            raise ValidationError(_("Only reception or a manager lends a loaner phone or takes "
                                    "it back."))
        if name == "lend_loaner":
            if "loaner_id" in data:
                raise ValidationError(_("Some fields are not valid."), fields={
                    "loaner_id": _("History names the loaner phone by its description.")})
            lend_loaded(ticket, actor, data, at=at, notify=False)
        else:
            return_loaded(ticket, actor, data, at=at, notify=False)
    except DomainError as exc:
        raise type(exc)(_("events[%(n)s] (%(event)s): %(problem)s", n=index, event=name,
                          problem=exc.message), **_extra(exc)) from None


def _extra(exc: DomainError) -> dict:
    if isinstance(exc, ValidationError):
        return {"fields": exc.fields}
    if isinstance(exc, lifecycle.TransitionNotAllowed):
        return {"state": exc.state, "allowed": exc.allowed}
    return {}


def _survey(ticket: Ticket, survey: dict) -> SurveyResponse:
    from .. import validation as v
    f = v.Fields(survey)
    f.take("csat", v.integer, minimum=1, maximum=5)
    f.take("nps", v.integer, minimum=0, maximum=10, required=False)
    f.take("comment", v.text, max_len=2000, required=False)
    clean = f.done()
    response = SurveyResponse(ticket=ticket, csat=clean["csat"], nps=clean.get("nps"),
                              comment=clean.get("comment") or "",
                              complaint=bool(survey.get("complaint")),
                              created_at=_when(survey.get("at"), "survey.at")
                              if survey.get("at") else ticket.updated_at)
    db.session.add(response)
    return response


def import_lines(lines: Iterable[str]) -> ImportReport:
    """Import every line; each good line is committed on its own, a bad one rolled back."""
    report = ImportReport()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        notes: list[str] = []
        try:
            record = json.loads(raw)
            added = import_record(record, notes)
            db.session.commit()
        except json.JSONDecodeError as exc:
            db.session.rollback()
            report.errors.append((number, _("not valid JSON (%(problem)s)", problem=exc.msg)))
            continue
        except DomainError as exc:
            db.session.rollback()
            detail = "; ".join(f"{k}: {v}" for k, v in (exc.extra.get("fields") or {}).items())
            report.errors.append((number, exc.message + (f" ({detail})" if detail else "")))
            continue
        except Exception as exc:  # noqa: BLE001 - report the line, keep importing the rest
            db.session.rollback()
            report.errors.append((number, f"{type(exc).__name__}: {exc}"))
            continue
        if added:
            report.imported += 1
            report.warnings += [(number, note) for note in notes]
        else:
            report.skipped += 1
    return report
