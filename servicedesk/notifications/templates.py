"""SMS texts: one per event and language, editable by a manager, with shipped defaults.

Defaults are msgids (through Flask-Babel), rendered in the customer's language with
``force_locale``; a stored SmsTemplate row overrides the default or switches the SMS off.
"""
import re
import string
import unicodedata
from typing import Optional

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..extensions import db
from ..i18n import format_datetime, format_money, localize_digits
from ..links import survey_url, tracking_url
from ..models import Ticket

DEFAULTS = {
    "admit": _l("{shop_name}: we received your {device}, receipt {ticket_number}. "
                "Follow it here: {tracking_url}"),
    "send_to_repair": _l("{shop_name}: your {device} ({ticket_number}) is with the repair unit. "
                         "Devices ahead of it: {queue_position}."),
    "quote": _l("{shop_name}: the estimate for your {device} is {estimate_total}. "
                "Approve or decline: {tracking_url}"),
    # A second (third...) estimate: the customer must know it replaces the one they had.
    "requote": _l("{shop_name}: the estimate for your {device} has changed; it is now "
                  "{estimate_total} and replaces the earlier one. Approve or decline: "
                  "{tracking_url}"),
    # An estimate with alternatives (an original display or a copy one): the customer
    # chooses on their page. {estimate_choices}: each alternative and its total.
    "quote_choices": _l("{shop_name}: the estimate for your {device} offers a choice: "
                        "{estimate_choices}. Choose one or decline: {tracking_url}"),
    # ...revised: it replaces the estimate the customer had (with or without alternatives).
    "requote_choices": _l("{shop_name}: the estimate for your {device} has changed and "
                          "replaces the earlier one; it now offers a choice: "
                          "{estimate_choices}. Choose one or decline: {tracking_url}"),
    "approve": _l("{shop_name}: estimate approved; your {device} goes to a technician for the "
                  "repair."),
    # Approved at once: the estimate was within the amount the customer pre-approved at intake
    # (they get this instead of the estimate's SMS asking them to approve).
    "approve_within": _l("{shop_name}: the estimate for your {device} is {estimate_total}, within "
                         "the amount you approved at intake, so it is approved; your device goes "
                         "to a technician for the repair. {tracking_url}"),
    # ...and when it is a revised estimate: the customer had been asked about another one.
    "approve_within_revised": _l("{shop_name}: the estimate for your {device} has changed to "
                                 "{estimate_total}, which replaces the earlier one. It is "
                                 "within the amount you approved at intake, so it is "
                                 "approved; your device goes to a technician for the repair. "
                                 "{tracking_url}"),
    "decline": _l("{shop_name}: estimate declined. Your {device} is ready to collect, "
                  "unrepaired. {tracking_url}"),
    # The link as for "finish": the page says why, what to bring and when the shop is open.
    "return_unrepaired": _l("{shop_name}: sorry, your {device} cannot be repaired ({reason}). "
                            "It is ready to collect. {tracking_url}"),
    "wait_parts": _l("{shop_name}: your {device} is waiting for a part ({part}). "
                     "We will tell you when work resumes."),
    # The part comes after the date promised, so the promise moved with it (the ticket page
    # asks for the new date): the customer must hear the new one.
    "wait_parts_promise": _l("{shop_name}: your {device} is waiting for a part ({part}), so it "
                             "will be ready by {promised_date}, not the date we gave you "
                             "before. We will tell you when work resumes."),
    "resume": _l("{shop_name}: work on your {device} has resumed."),
    # The link, not the phone: the customer's page has the bill, what to bring, the opening
    # hours and the shop's phone and address, and both do not fit two Persian parts.
    "finish": _l("{shop_name}: your {device} is ready to collect. Amount due: {amount_due}. "
                 "{tracking_url}"),
    "deliver": _l("{shop_name}: your {device} was handed over. Thank you! "
                  "How did we do? {survey_url}"),
    "close": _l("{shop_name}: thank you for your feedback."),
    "cancel": _l("{shop_name}: the repair of your {device} (receipt {ticket_number}) was "
                 "cancelled ({reason}). If it is still with us, please collect it. {shop_phone}"),
    # Money given back after the hand-back (a "refund" record, services.reception.refund).
    "refund": _l("{shop_name}: we gave back {refund_amount} for your {device} (receipt "
                 "{ticket_number}). {shop_phone}"),
    # A one-time code to confirm who collects the device (servicedesk.pickup), at the desk's
    # request: the owner reads it out, or the collector they sent does.
    "collector_code_sent": _l("{shop_name}: {one_time_code} is the code to collect your "
                              "{device} (receipt {ticket_number}). Give it only at our "
                              "counter; it holds for 10 minutes."),
    # The desk replaced the customer's link (services.tickets.replace_link): the old one, in
    # an SMS forwarded or on a receipt lost, no longer opens anything.
    "replace_link": _l("{shop_name}: the link to follow the repair of your {device} has "
                       "changed; the old one no longer works. The new link: {tracking_url}"),
    # Reminders (services.reminders), once per estimate or hand-back, after the days the shop
    # set: an estimate nobody answered, a device nobody collected.
    "remind_estimate": _l("{shop_name}: a reminder: the estimate for your {device} "
                          "({estimate_total}) is waiting for your answer. Approve or decline: "
                          "{tracking_url}"),
    "remind_pickup": _l("{shop_name}: a reminder: your {device} is ready to collect. "
                        "{tracking_url} {shop_phone}"),
    # The queue: to a customer who left a mobile number at the kiosk (no ticket yet).
    "visit_issued": _l("{shop_name}: your number is {label}. People ahead of you: {ahead}. "
                       "We will text you again when your turn is near."),
    "visit_near": _l("{shop_name}: number {label}, your turn is near (people ahead of you: "
                     "{ahead}). Please stay close to reception."),
    "visit_called": _l("{shop_name}: number {label}, it is your turn: please come to counter "
                       "{counter}."),
}
QUEUE_EVENTS = ("visit_issued", "visit_near", "visit_called")
# SMS texts for a kind of an event: a revised estimate is a "quote" event with a new version,
# an estimate approved within the pre-approved amount an "approve" event by the system.
VARIANTS = {"requote": "quote", "quote_choices": "quote", "requote_choices": "quote",
            "approve_within": "approve",
            "approve_within_revised": "approve",
            "wait_parts_promise": "wait_parts"}
# Until the shop sets a variant's own text, it follows the SMS it stands in for, as the shop set
# it: (that SMS, whether its words stand too, or only its switch). A revision is an estimate in
# the shop's words; the approval within the pre-approved amount replaces the estimate's SMS
# (switched off with it), and its words are its own: the shop's estimate text asks to approve.
# A revised estimate with alternatives follows the estimate with alternatives as a revision
# follows the estimate (and, through it, the estimate's switch).
FOLLOWS = {"requote": ("quote", True), "quote_choices": ("quote", False),
           "requote_choices": ("quote_choices", True),
           "approve_within": ("quote", False),
           "approve_within_revised": ("quote", False),
           "wait_parts_promise": ("wait_parts", False)}

VARIABLES = {
    "customer_name": _l("customer's name"),
    "ticket_number": _l("ticket number"),
    "device": _l("device"),
    "tracking_url": _l("tracking link"),
    "survey_url": _l("survey link"),
    "estimate_total": _l("estimate total"),
    "estimate_choices": _l("the estimate's alternatives, each with its total"),
    "amount_due": _l("amount due"),
    "refund_amount": _l("amount given back"),
    "promised_date": _l("promised date"),
    "queue_position": _l("devices ahead in the repair queue"),
    "reason": _l("reason given"),
    "part": _l("part awaited"),
    "pickup_code": _l("pickup code (on the receipt)"),
    "one_time_code": _l("one-time code to collect the device"),
    "shop_name": _l("shop name"),
    "shop_phone": _l("shop phone"),
    "label": _l("queue number"),
    "ahead": _l("people ahead in the queue"),
    "counter": _l("counter called to"),
}
SHOP_VARIABLES = ("shop_name", "shop_phone")
QUEUE_VARIABLES = (*SHOP_VARIABLES, "label", "ahead", "counter")
TICKET_VARIABLES = tuple(name for name in VARIABLES if name not in QUEUE_VARIABLES[2:])
# Variables filled from what the event itself records: only these events' SMS have them (a
# {part} in the "ready" SMS would always be empty).
# (a refund's reason is the shop's, kept off the customer's page: not in its SMS either)
EVENT_VARIABLES = {"reason": ("decline", "return_unrepaired", "cancel", "close"),
                   "part": ("wait_parts",),
                   # money and the survey exist from their step on ("0 toman" is no estimate)
                   "estimate_total": ("quote", "approve", "decline", "wait_parts", "resume",
                                      "finish", "deliver", "close", "remind_estimate"),
                   "estimate_choices": ("quote", "remind_estimate"),
                   "amount_due": ("finish", "deliver", "close", "remind_pickup"),
                   "survey_url": ("deliver", "close"),
                   "refund_amount": ("refund",),
                   # the code on the receipt, for the SMS that ask the customer to come
                   "pickup_code": ("admit", "decline", "return_unrepaired", "finish",
                                   "remind_pickup", "cancel"),
                   "one_time_code": ("collector_code_sent",)}
# Variables that can be empty when the SMS goes (for the events listed; None: every ticket
# event): when (as the template editor's preview says it), and the words the SMS says
# instead, so it never ends in "...: " with nothing after it.
MAYBE_EMPTY = {
    "promised_date": (None, _l("When the ticket has no promised date, it reads:"),
                      _l("not set yet")),
    "reason": (("decline", "close"), _l("When no reason is given, it reads:"), _l("none given")),
    "pickup_code": (("admit", "decline", "return_unrepaired", "finish", "remind_pickup",
                     "cancel"), _l("When the ticket has no pickup code (received before the "
                                   "codes), it reads:"), _l("none")),
}


def variables_for(event: Optional[str]) -> dict:
    """The variables an event's SMS can use (a queue SMS has no ticket; a ticket SMS no queue
    number; a reason or a part only where the event records one); every variable when the
    event is not given."""
    if event is None:
        return dict(VARIABLES)
    event = VARIANTS.get(event, event)
    names = QUEUE_VARIABLES if event in QUEUE_EVENTS else TICKET_VARIABLES
    return {name: VARIABLES[name] for name in names
            if event in EVENT_VARIABLES.get(name, (event,))}


def maybe_empty(event: Optional[str]) -> dict:
    """{variable: (when it is empty, the words said instead)} for an event's SMS."""
    if event in QUEUE_EVENTS:
        return {}
    event = VARIANTS.get(event, event)
    return {name: (when, instead) for name, (events, when, instead) in MAYBE_EMPTY.items()
            if events is None or event is None or event in events}


def placeholders(body: str) -> set[str]:
    """Names used as {placeholders} in a template body (ValueError if the braces are broken)."""
    return {name for _, name, _, _ in string.Formatter().parse(body) if name is not None}


def check_body(body: str, event: Optional[str] = None) -> None:
    """Refuse a template that uses a variable the event does not have (an unfilled placeholder
    reaches the customer otherwise) or formats one ({device:>999}, {device!r}): only plain
    {name} placeholders."""
    try:
        fields = list(string.Formatter().parse(body))
    except ValueError:
        raise ValueError(_("Unbalanced braces in the template.")) from None
    names = {name for _text, name, _spec, _conv in fields if name is not None}
    unknown = names - variables_for(event).keys()
    elsewhere = {name for name in unknown if name in EVENT_VARIABLES}
    if unknown - elsewhere:
        raise ValueError(_("Unknown variables: %(names)s.",
                           names=", ".join(sorted(unknown - elsewhere))))
    if elsewhere:
        raise ValueError(_("This SMS has no %(names)s: it is only known when other events "
                           "happen, and would be sent empty.",
                           names=", ".join("{" + name + "}" for name in sorted(elsewhere))))
    if any(name is not None and (spec or conversion) for _t, name, spec, conversion in fields):
        raise ValueError(_("Write variables as {name}, without formatting."))


def default_body(event: str, language: str) -> str:
    with force_locale(language):
        return str(DEFAULTS[event])


def template_for(event: str, language: str) -> tuple[Optional[str], bool]:
    """(body, enabled) for an event in a language: the stored row, else the default."""
    from .. import settings
    stored = settings.template_override(event, language)
    if stored is not None:
        return stored
    if event not in DEFAULTS:
        return None, False
    return default_body(event, language), True


def event_labels() -> dict:
    """What each SMS is sent for, in the staff's words (the templates page, the SMS report)."""
    from ..lifecycle import EVENTS
    return {**{name: rule.label for name, rule in EVENTS.items()},
            "refund": _("Money given back"),
            "requote": _("Revised estimate"),
            "quote_choices": _("Estimate with alternatives"),
            "requote_choices": _("Revised estimate with alternatives"),
            "approve_within": _("Estimate approved within the pre-approved amount"),
            "approve_within_revised": _("Revised estimate approved within the pre-approved "
                                        "amount"),
            "wait_parts_promise": _("Waiting for a part, new promised date"),
            "remind_estimate": _("Reminder: estimate not answered"),
            "remind_pickup": _("Reminder: device not collected"),
            "collector_code_sent": _("Code to collect the device (asked for at the desk)"),
            "replace_link": _("The customer's new link (the old one replaced)"),
            "visit_issued": _("Queue number taken"), "visit_near": _("Queue: turn near"),
            "visit_called": _("Queue: number called")}


def repair_queue_position(ticket: Ticket) -> int:
    """Devices of the same branch waiting for diagnosis ahead of this one: admitted before it,
    the order of the repair unit's queue (the same rule as the tracking page's
    ``workbench.queue_position``, so the SMS and the page give the same number)."""
    return db.session.connection().scalar(
        select(func.count(Ticket.id)).where(
            Ticket.branch_id == ticket.branch_id, Ticket.state == "diagnosis",
            Ticket.created_at < ticket.created_at)) or 0


def context(ticket: Ticket, event_data: dict, language: str,
            needed: Optional[set] = None) -> dict:
    """The values of a ticket SMS's variables in ``language``; only the ``needed`` ones when
    given (the repair-queue count is a query: not run for a text that does not show it)."""
    def wanted(name: str) -> bool:
        return needed is None or name in needed

    values = {
        "customer_name": ticket.customer.name,
        "ticket_number": localize_digits(ticket.number, locale=language),
        "device": ticket.device.label,
        "reason": event_data.get("reason") or "",
        "part": event_data.get("part") or "",
        "one_time_code": localize_digits(event_data.get("one_time_code") or "",
                                         locale=language),
        # (a ticket from before the codes has none: the text says so in words, MAYBE_EMPTY)
        "pickup_code": localize_digits(ticket.pickup_code or "", locale=language),
    }
    if wanted("tracking_url"):
        values["tracking_url"] = tracking_url(ticket)
    if wanted("survey_url"):
        values["survey_url"] = survey_url(ticket)
    choices = estimate_choices(ticket, language) if ticket.state == "estimate" else ""
    if wanted("estimate_total"):
        # an estimate with alternatives not chosen yet has no one total: each one's (a
        # reminder, a text the shop wrote for the estimate without {estimate_choices})
        values["estimate_total"] = choices or format_money(ticket.estimate_total or 0,
                                                           locale=language)
    if wanted("estimate_choices"):
        values["estimate_choices"] = choices or values.get("estimate_total") or format_money(
            ticket.estimate_total or 0, locale=language)
    if wanted("amount_due"):
        values["amount_due"] = format_money(ticket.amount_due or 0, locale=language)
    if wanted("refund_amount"):
        values["refund_amount"] = format_money(event_data.get("amount") or 0, locale=language)
    if wanted("promised_date"):
        values["promised_date"] = (format_datetime(ticket.promised_date, "date", locale=language)
                                   if ticket.promised_date else "")
    if wanted("queue_position"):
        # a technician has it already (sent to one by name): nobody is ahead of it, as its
        # page says ("a technician is examining your device")
        ahead = 0 if ticket.technician_id is not None else repair_queue_position(ticket)
        if ahead:
            values["queue_position"] = localize_digits(ahead, locale=language)
        else:  # "Devices ahead of it: none", not "0"
            with force_locale(language):
                values["queue_position"] = _("none")
    for name in SHOP_VARIABLES:
        if wanted(name):
            values[name] = shop_value(name, language)
    return values


def estimate_choices(ticket: Ticket, language: str) -> str:
    """The alternatives of the ticket's estimate, each with its total, as an SMS says them
    ("Original display 5,000,000 toman / Copy display 3,300,000 toman"); "" without."""
    from ..lifecycle import estimate_alternatives  # (it imports the outbox, which imports us)
    return " / ".join(f"{a['name']} {format_money(a['total'], locale=language)}"
                      for a in estimate_alternatives(ticket))


def shop_value(name: str, language: str) -> str:
    """A shop variable's value for an SMS in ``language``. Right to left, a phone number after
    Persian words reads backwards ("88001122-021": its digits take the Arabic letters'
    direction, the dash does not join them), so it is marked left to right."""
    from .. import settings
    value = (settings.shop_name(language) if name == "shop_name" else settings.get(name)) or ""
    if name == "shop_phone" and value and language == "fa":
        return f"\u200e{value}\u200e"
    return value


class _Keep(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def fill(body: str, values: dict) -> str:
    """``body`` with its {variables} replaced (an unknown one is left as written)."""
    return body.format_map(_Keep(values)).strip()


def fill_in_words(values: dict, event: Optional[str], language: str) -> dict:
    """``values`` with each empty one that can be empty said in words, in ``language``."""
    empty = {name: instead for name, (_when, instead) in maybe_empty(event).items()
             if name in values and not values[name]}
    if not empty:
        return values
    with force_locale(language):
        return {**values, **{name: str(instead) for name, instead in empty.items()}}


def kind_of(event: str, event_data: Optional[dict]) -> str:
    """The kind of an event its SMS is written for (a key of DEFAULTS): an estimate with
    alternatives to choose between ("quote_choices"; "requote_choices" revised), a revised
    estimate ("requote"), an estimate approved at once within the pre-approved amount
    ("approve_within"), a wait for a part that moved the promised date
    ("wait_parts_promise"), else the event itself."""
    event_data = event_data or {}
    if event == "quote" and event_data.get("alternatives"):
        revised = (event_data.get("estimate_version") or 1) > 1
        return "requote_choices" if revised else "quote_choices"
    if event == "quote" and (event_data.get("estimate_version") or 1) > 1:
        return "requote"
    if event == "approve" and event_data.get("channel") == "pre_approved":
        revised = (event_data.get("estimate_version") or 1) > 1
        return "approve_within_revised" if revised else "approve_within"
    if event == "wait_parts" and event_data.get("promise_moved"):
        return "wait_parts_promise"
    return event


def text_source(kind: str, language: str) -> tuple[str, bool]:
    """(the template whose text an SMS of this kind sends, whether it is sent): a variant's own
    until the shop sets the SMS it follows (``FOLLOWS``) and not the variant's."""
    if kind not in FOLLOWS:
        return kind, True
    from .. import settings
    if settings.template_override(kind, language) is not None:
        return kind, True
    base, words_too = FOLLOWS[kind]
    stored = settings.template_override(base, language)
    if stored is None:
        # the SMS it follows follows another (a revision with alternatives): its switch
        return kind, (text_source(base, language)[1] if base in FOLLOWS else True)
    if words_too:
        return base, True
    return kind, bool(stored[1])  # its own words, the base's switch


def _text(event: str, event_data: Optional[dict], language: str) -> tuple[str, Optional[str]]:
    """(the template an SMS of this event sends, its body), the body None when the shop's
    switches leave it unsent."""
    source, sent = text_source(kind_of(event, event_data), language)
    body, enabled = template_for(source, language) if sent else (None, False)
    return source, (body if enabled and body else None)


def is_sent(event: str, event_data: Optional[dict], language: str) -> bool:
    """Whether the SMS of this event (of its kind: a revision, a moved promise...) is sent in
    ``language``, as the shop set its switches."""
    return _text(event, event_data, language)[1] is not None


RTL_LANGUAGES = frozenset({"fa"})
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _first_strong(text: str) -> Optional[bool]:
    """True when the first letter of ``text`` is right to left, False when left to right,
    None when it has none."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("L", "R", "AL"):
            return kind != "L"
    return None


def directed(body: str, template: str, language: str) -> str:
    """``body`` (``template`` filled) marked to read in the direction of the template's own
    words. A phone shows a message in the direction of its first letter: an English SMS that
    starts with a Persian shop name reads right to left ("...Devices ahead of .it: 1"), a
    Persian one after a Latin name left to right. One invisible mark before it sets the
    direction; none when the first letter already gives it."""
    rtl = _first_strong(_PLACEHOLDER.sub("", template))
    if rtl is None:
        rtl = language in RTL_LANGUAGES
    if _first_strong(body) in (None, rtl):
        return body
    return ("\u200f" if rtl else "\u200e") + body


def render(event: str, language: str, ticket: Ticket, event_data: dict) -> Optional[str]:
    """The SMS body for this event in this language, or None when the manager switched it off."""
    source, body = _text(event, event_data, language)
    if body is None:
        return None
    values = context(ticket, event_data, language, needed=placeholders(body))
    return directed(fill(body, fill_in_words(values, source, language)), body, language)


def render_queue(event: str, language: str, values: dict) -> Optional[str]:
    """A queue SMS (``QUEUE_EVENTS``) from the visit's values, or None when switched off."""
    body, enabled = template_for(event, language)
    if not enabled or not body:
        return None
    return directed(fill(body, {**{name: shop_value(name, language)
                                   for name in SHOP_VARIABLES}, **values}), body, language)
