"""seed-demo: a small demo shop with staff, customers and a ticket in every state."""
import secrets
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from .. import lifecycle
from ..auth import ROLE_LABELS
from ..extensions import db
from ..lifecycle import Actor
from ..models import SurveyResponse, User, utcnow
from .people import create_user
from .tickets import build_ticket, clean_intake, default_branch

STAFF = (("reza", "reception", "رضا احمدی"), ("sara", "technician", "سارا محمدی"),
         ("ali", "technician", "علی کریمی"), ("maryam", "manager", "مریم حسینی"),
         ("admin", "admin", "مدیر سیستم"), ("lobby", "kiosk", "کیوسک سالن انتظار"))

CUSTOMERS = (("نرگس رضایی", "09121234567", "Samsung", "Galaxy A54", "صفحه شکسته"),
             ("Hamid Karimi", "09351234567", "Apple", "iPhone 13", "Battery drains fast"),
             ("زهرا موسوی", "09191234567", "Xiaomi", "Redmi Note 12", "شارژ نمی‌شود"),
             ("مهدی صادقی", "09131234567", "Huawei", "P30", "دوربین کار نمی‌کند"),
             ("Leila Ahmadi", "09361234567", "Samsung", "Galaxy S21", "No sound"),
             ("امیر جعفری", "09121112233", "Apple", "iPhone 11", "فیس آیدی"),
             ("فاطمه نوری", "09123334455", "Nokia", "G21", "خیس شده"),
             ("Sina Rahimi", "09125556677", "Google", "Pixel 7", "Cracked back glass"),
             ("پریسا کاظمی", "09127778899", "Xiaomi", "Poco X5", "هنگ می‌کند"))

# Each demo ticket walks this far along the lifecycle.
PATHS = (
    [],
    ["send_to_repair"],
    ["send_to_repair", "quote"],
    ["send_to_repair", "quote", "approve"],
    ["send_to_repair", "quote", "approve", "wait_parts"],
    ["send_to_repair", "quote", "approve", "finish"],
    ["send_to_repair", "quote", "approve", "finish", "deliver"],
    ["send_to_repair", "quote", "approve", "finish", "deliver", "close"],
    ["cancel"],
)

# The branch's own loaner phones (label, model, IMEI): one goes out on the ticket waiting for
# parts; the others wait on the list.
LOANERS = (("A1", "سامسونگ A10، سفید", "356938035643809"),
           ("A2", "شیائومی Redmi 9A، خاکستری", "353918053245110"),
           ("A3", "نوکیا 105", ""))

LINES = [{"kind": "part", "description": "قطعه / part", "qty": 1, "unit_price": 12_000_000},
         {"kind": "labour", "description": "دستمزد / labour", "qty": 1, "unit_price": 3_000_000}]


def _stock_loaners(manager: User, branch) -> None:
    """The demo branch's list of loaner phones, added once (the manager keeps the list)."""
    from ..models import Loaner
    from .loaners import save_phone
    for label, model, serial in LOANERS:
        if db.session.scalar(select(Loaner.id).where(Loaner.branch_id == branch.id,
                                                     Loaner.label == label)) is None:
            save_phone(manager, None, {"branch_id": branch.id, "label": label, "model": model,
                                       "serial": serial})


def seed() -> list[str]:
    out = []
    users = {}
    for username, role, full_name in STAFF:
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            password = secrets.token_urlsafe(9)
            user = create_user(username, role, password, full_name=full_name,
                               branch=default_branch())
            out.append(_("User %(name)s (%(role)s), password: %(password)s", name=username,
                         role=ROLE_LABELS.get(role, role), password=password))
        users[username] = user
    branch = default_branch()
    _stock_loaners(users["maryam"], branch)
    start = utcnow() - timedelta(days=3)
    for i, ((name, phone, brand, model, problem), path) in enumerate(zip(CUSTOMERS, PATHS)):
        clean = clean_intake({"customer": {"name": name, "phone": phone,
                                           "language": "en" if name.isascii() else "fa"},
                              "device": {"kind": "phone", "brand": brand, "model": model},
                              "problem": problem})
        at = start + timedelta(hours=i)
        ticket = build_ticket(clean, branch, at=at)
        lifecycle.fire(ticket, "admit", Actor.staff(users["reza"]), {"problem": problem},
                       at=at, notify=False)
        tech = users["sara"] if i % 2 else users["ali"]
        data = {"send_to_repair": {"technician": tech.username}, "quote": {"lines": LINES},
                "approve": {"channel": "phone"}, "wait_parts": {"part": "LCD"},
                "finish": {"lines": LINES},
                "deliver": {"amount_paid": 15_000_000, "payment_method": "card"},
                "cancel": {"reason": "customer changed their mind"}, "close": {}}
        for step, event in enumerate(path, start=1):
            actor = {"send_to_repair": Actor.staff(users["reza"]),
                     "approve": Actor.staff(users["reza"]), "deliver": Actor.staff(users["reza"]),
                     "cancel": Actor.staff(users["reza"]), "close": Actor.customer()}.get(
                         event, Actor.staff(tech))
            if event == "close":
                db.session.add(SurveyResponse(ticket=ticket, csat=5, nps=9, comment="عالی"))
            lifecycle.fire(ticket, event, actor, data[event], at=at + timedelta(hours=step * 3),
                           notify=False)
        # The demo's numbers look real and may be someone's: they never get an SMS (a shop
        # that starts on the demo's database and switches to a real SMS backend later texts
        # only the customers it admitted itself).
        if not ticket.customer.sms_opt_out:
            ticket.customer.sms_opt_out = True
            ticket.customer.opted_out_at = at
        db.session.commit()
        if ticket.state == "waiting_parts":  # a long wait: the customer has a loaner phone
            from .loaners import free_phones, lend
            free = free_phones(branch.id)  # one of the list's (typed when all are out)
            lend(ticket.id, Actor.staff(users["reza"]),
                 {"loaner_id": free[0].id, "condition": "خط روی قاب"} if free else
                 {"description": "سامسونگ A10، سفید", "condition": "خط روی قاب"})
        out.append(_("Ticket %(number)s: %(state)s", number=ticket.number,
                     state=lifecycle.STATE_LABELS.get(ticket.state, ticket.state)))
    out.append(_("(The demo's customers get no SMS: their numbers may be real people's.)"))
    return out
