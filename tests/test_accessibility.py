"""What a screen reader and a keyboard meet on the forms a shop uses all day: a refused form
marks the field to mend (aria-invalid), names its message (aria-describedby pointing at the
message's id), and the page's script puts the cursor there (forms.js: the first
[aria-invalid]). Also the names and headings an axe review asked for. The looks (contrast, target
sizes) are measured in a browser: tests/e2e/test_accessibility_e2e.py."""
import re
from html.parser import HTMLParser

import pytest

from .conftest import PASSWORD
from .test_public import Customer, survey
from .test_reception import Staff, reload, text

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.children, self.texts = tag, attrs, parent, [], []

    def text(self) -> str:
        parts = []
        for kind, item in self.texts:
            parts.append(item if kind == "t" else item.text())
        return " ".join(" ".join(parts).split())

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


class Tree(HTMLParser):
    """Just enough of a DOM: elements, their attributes and text, found by id or attribute."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#root", {})
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        self.current.texts.append(("n", node))
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.texts.append(("t", data))

    def all(self, **attrs):
        return [n for n in self.root.walk()
                if all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def by_id(self, id_):
        found = [n for n in self.root.walk() if n.attrs.get("id") == id_]
        assert len(found) == 1, f"{len(found)} elements with id={id_!r}"
        return found[0]

    def invalid(self):
        return [n for n in self.root.walk() if n.attrs.get("aria-invalid") == "true"]


def described(tree: Tree, field: Node) -> str:
    """The text of what a field's aria-describedby points at (every id must exist)."""
    ids = (field.attrs.get("aria-describedby") or "").split()
    assert ids, f"{field.tag} {field.attrs} has no aria-describedby"
    return " ".join(tree.by_id(i).text() for i in ids)


def assert_refused(page, name: str, words: str, first: bool = True) -> Node:
    """The field called ``name`` (or of that id) is marked invalid, its description holds
    ``words``, and (with ``first``) it is the first field marked on the page, where forms.js
    puts the cursor. ``page``: the HTML, or its Tree."""
    tree = page if isinstance(page, Tree) else Tree(page)
    marked = tree.invalid()
    assert marked, "no field is aria-invalid"
    field = [n for n in marked if n.attrs.get("name") == name or n.attrs.get("id") == name]
    assert field, f"{name} is not aria-invalid (only {[n.attrs.get('name') for n in marked]})"
    assert words in described(tree, field[0])
    if first:
        assert marked[0] is field[0], f"the first marked field is {marked[0].attrs}"
    return field[0]


@pytest.fixture
def desk(app, users):
    return Staff(app, "reception1")


@pytest.fixture
def tech(app, users):
    return Staff(app, "technician1")


@pytest.fixture
def manager(app, users):
    return Staff(app, "manager1")


def fire(staff, ticket, event, lines=(), **fields):
    data = {"event": event, "version": str(reload(ticket).version), **fields}
    if lines:
        data.update({"line_kind": [l[0] for l in lines], "line_description": [l[1] for l in lines],
                     "line_qty": [l[2] for l in lines], "line_unit_price": [l[3] for l in lines]})
    return staff.post(f"/tickets/{ticket.id}/events?lang=en", data)


# --- 1. the ticket page's event forms ------------------------------------------------------

def test_an_estimate_sent_with_no_lines_marks_the_first_description(tech, make_ticket):
    ticket = make_ticket("diagnosis")
    resp = fire(tech, ticket, "quote", [("part", "", "", "")])
    assert resp.status_code == 422
    tree = Tree(text(resp))
    field = assert_refused(tree, "line_description", "")
    message = tree.by_id(field.attrs["aria-describedby"])
    assert message.attrs.get("data-error") == "lines" and message.text()
    # the first row of the quote's editor, not a row of another form
    form = tree.by_id("event-quote")
    assert field in list(form.walk())
    assert [n for n in form.walk() if n.attrs.get("name") == "line_description"][0] is field


def test_an_estimate_sent_without_the_editor_marks_the_first_description(tech, make_ticket):
    ticket = make_ticket("diagnosis")
    resp = fire(tech, ticket, "quote")  # no line fields at all (a script, an old page)
    assert resp.status_code == 422
    assert_refused(text(resp), "line_description", "required")


def test_a_bad_line_stays_tied_to_its_row(tech, make_ticket):
    ticket = make_ticket("diagnosis")
    resp = fire(tech, ticket, "quote", [("part", "Screen", "1", "abc")])
    assert resp.status_code == 422
    field = assert_refused(text(resp), "line_unit_price", "")
    assert field.attrs["aria-describedby"] == "line-error-quote"


def test_a_refused_text_field_of_an_event_names_its_message(tech, make_ticket):
    ticket = make_ticket("repair")
    resp = fire(tech, ticket, "wait_parts", part="")
    assert resp.status_code == 422
    field = assert_refused(text(resp), "part", "required")
    assert field.attrs["id"] == "wait_parts-part"
    assert field.attrs["aria-describedby"] == "wait_parts-part-error"


def test_a_bill_above_the_agreed_amount_marks_the_box_that_allows_it(tech, make_ticket):
    ticket = make_ticket("repair")
    resp = fire(tech, ticket, "finish", [("part", "Screen", "1", "9,000,000")],
                above_estimate_ok="")
    assert resp.status_code == 422
    field = assert_refused(text(resp), "above_estimate_ok", "The customer agreed")
    assert field.attrs["aria-describedby"] == "finish-lines-error"


# --- 2. the delivery desk ------------------------------------------------------------------

def test_a_refused_hand_back_marks_the_amount_and_names_its_message(desk, make_ticket):
    ticket = make_ticket("ready")
    resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", {
        "amount_paid": "", "version": str(ticket.version), "collected_by": "x" * 200})
    assert resp.status_code == 422
    page = text(resp)
    field = assert_refused(page, "amount_paid", "This field is required.")
    assert field.attrs["aria-describedby"] == "amount_paid-error"
    field = assert_refused(page, "collected_by", "120", first=False)
    assert field.attrs["aria-describedby"] == "collected_by-error"


# --- 3. the customer's survey --------------------------------------------------------------

def test_an_empty_survey_marks_the_satisfaction_scale(app, make_ticket):
    customer = Customer(app)
    ticket = make_ticket("delivered")
    customer.get(survey(ticket) + "?lang=en")
    resp = customer.post(survey(ticket) + "?lang=en", {"csat": "", "nps": "", "comment": ""})
    assert resp.status_code == 422
    tree = Tree(text(resp))
    assert_refused(tree, "csat", "Choose how satisfied you are: a number from 1 to 5.")
    assert [n.attrs["id"] for n in tree.invalid()] == ["csat-1"]  # nothing else is wrong


def test_every_refused_survey_answer_names_its_message(app, make_ticket):
    customer = Customer(app)
    ticket = make_ticket("delivered")
    customer.get(survey(ticket) + "?lang=en")
    resp = customer.post(survey(ticket) + "?lang=en", {"nps": "11", "comment": "x" * 2100})
    assert resp.status_code == 422
    page = text(resp)
    csat = assert_refused(page, "csat", "Choose how satisfied you are")
    assert csat.attrs["id"] == "csat-1"  # the scale's first answer, where the cursor goes
    nps = assert_refused(page, "nps", "a number from 0 to 10", first=False)
    assert nps.attrs["id"] == "nps-0"
    comment = assert_refused(page, "comment", "Too long", first=False)
    assert comment.tag == "textarea"
    tree = Tree(page)
    # each answer of a refused scale, and its group, are read with the message
    for n in range(1, 6):
        assert "Choose how satisfied" in described(tree, tree.by_id(f"csat-{n}"))
    groups = [n for n in tree.root.walk() if n.tag == "fieldset"]
    assert all("aria-describedby" in g.attrs for g in groups[:2])
    # nothing marked when nothing is wrong
    fresh = Tree(text(customer.get(survey(ticket) + "?lang=en")))
    assert fresh.invalid() == [] and not any("aria-describedby" in g.attrs for g in
                                             fresh.root.walk() if g.tag == "fieldset")


# --- 4, 10. the till count and the refund ----------------------------------------------------

def test_a_refused_till_count_note_names_its_message(desk):
    resp = desk.post("/desk/takings/count?lang=en", {"counted": "100", "note": "x" * 600,
                                                      "money_unit": "toman"})
    assert resp.status_code == 422
    field = assert_refused(text(resp), "note", "Too long")
    assert field.attrs["id"] == "till-note"
    assert field.attrs["aria-describedby"] == "till-note-error"


def test_a_refund_without_a_payment_method_marks_the_methods(manager, make_ticket):
    ticket = make_ticket("delivered")
    resp = manager.post(f"/tickets/{ticket.id}/refund?lang=en", {
        "amount": "150,000", "reason": "Overcharged for a part", "money_unit": "toman",
        "version": str(ticket.version)})
    assert resp.status_code == 422
    tree = Tree(text(resp))
    field = assert_refused(tree, "payment_method", "")
    assert field.attrs["id"].startswith("refund-method-")
    assert tree.by_id("refund-method-error").text()
    assert all(n.attrs.get("aria-describedby") == "refund-method-error"
               for n in tree.all(name="payment_method"))


# --- 5. the login --------------------------------------------------------------------------

@pytest.mark.parametrize("form, first, words", [
    ({"username": "", "password": ""}, "username", "This field is required."),
    ({"username": "reception1", "password": ""}, "password", "This field is required."),
    ({"username": "", "password": PASSWORD}, "username", "This field is required.")])
def test_a_login_sent_empty_or_half_filled_says_what_is_missing(app, users, form, first, words):
    client = app.test_client()
    with app.app_context():
        page = client.get("/login?lang=en").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        resp = client.post("/login?lang=en", data={**form, "csrf_token": token})
    assert resp.status_code == 401
    tree = Tree(text(resp))
    field = assert_refused(tree, first, words)
    assert field.attrs["aria-describedby"] == f"{first}-error"
    # only what is missing is marked
    assert [n.attrs["name"] for n in tree.invalid()] == [k for k, v in form.items() if not v]


def test_a_wrong_password_marks_no_field(app, users):
    client = app.test_client()
    with app.app_context():
        page = client.get("/login?lang=en").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        resp = client.post("/login?lang=en", data={"username": "reception1", "password": "nope",
                                                   "csrf_token": token})
    assert resp.status_code == 401 and "Wrong user name or password." in text(resp)
    assert Tree(text(resp)).invalid() == []


# --- markup: names, words, headings ----------------------------------------------------------

def test_each_send_to_repair_button_is_named_with_its_ticket(desk, make_ticket):
    first, second = make_ticket("intake"), make_ticket("intake")
    tree = Tree(text(desk.get("/desk?lang=en")))
    names = {n.attrs["action"]: " ".join(b.text() for b in n.walk() if b.tag == "button")
             for n in tree.root.walk()
             if n.tag == "form" and n.attrs.get("action", "").endswith("/send")}
    assert names == {f"/desk/tickets/{t.id}/send": f"Send to repair {t.number}"
                     for t in (first, second)}


def test_the_kiosk_marks_the_language_it_is_in(desk):
    for lang, other in (("fa", "en"), ("en", "fa")):
        tree = Tree(text(desk.get(f"/kiosk?lang={lang}")))
        links = {n.attrs["lang"]: n for n in tree.root.walk()
                 if n.tag == "a" and n.attrs.get("href", "").startswith("?lang=")}
        assert links[lang].attrs.get("aria-current") == "page"
        assert "aria-current" not in links[other].attrs


@pytest.mark.parametrize("lang, done, skipped", [("en", "(done)", "(skipped)"),
                                                 ("fa", "(انجام شد)", "(بدون این مرحله)")])
def test_the_progress_says_done_and_skipped_in_words(app, make_ticket, users, lang, done,
                                                      skipped):
    from servicedesk.services import tickets as ticket_service
    from servicedesk.lifecycle import Actor
    returned = make_ticket("diagnosis")
    ticket_service.fire_event(returned.id, "return_unrepaired", Actor.staff(users["technician"]),
                              {"reason": "The main board is damaged"})
    customer = Customer(app)
    tree = Tree(text(customer.get(f"/t/{returned.public_token}?lang={lang}")))
    steps = {n.attrs["data-step"]: n for n in tree.root.walk() if n.attrs.get("data-step")}
    assert steps["intake"].attrs["class"] == "done" and steps["estimate"].attrs["class"] == "skipped"
    for key, step in steps.items():
        hidden = [n.text() for n in step.walk() if n.attrs.get("class") == "visually-hidden"]
        marks = [n for n in step.walk() if n.attrs.get("aria-hidden") == "true"]
        if step.attrs["class"] == "done":
            assert hidden == [done] and [m.text() for m in marks] == ["✓"], key
        elif step.attrs["class"] == "skipped":
            assert hidden == [skipped] and not marks, key
        else:
            assert not hidden and not marks, key


def test_action_columns_have_a_header_for_screen_readers(tech, make_ticket, app, users):
    ticket = make_ticket("diagnosis")
    tree = Tree(text(tech.get(f"/tickets/{ticket.id}?lang=en")))
    editor = [n for n in tree.root.walk() if n.tag == "table"
              and "lines-table" in n.attrs.get("class", "")][0]
    headers = [n.text() for n in editor.walk() if n.tag == "th"]
    assert headers[-1] == "Actions" and all(headers)
    # the worklist's repair queue (its Claim column)
    from servicedesk.services import tickets as ticket_service
    from servicedesk.lifecycle import Actor
    from .conftest import INTAKE
    queued = ticket_service.admit(INTAKE, Actor.staff(users["reception"]))
    ticket_service.fire_event(queued.id, "send_to_repair", Actor.staff(users["reception"]), {})
    tree = Tree(text(tech.get("/workbench/?lang=en")))
    for table in (n for n in tree.root.walk() if n.tag == "table"):
        headers = [n.text() for n in table.walk() if n.tag == "th"]
        assert all(headers), headers
    queue = tree.by_id("bucket-queue")
    assert [n.text() for n in queue.walk() if n.tag == "th"][-1] == "Actions"


def test_the_wall_display_and_the_queue_slip_have_an_h1(desk):
    for url in ("/display?lang=en", "/display/board?lang=en"):
        tree = Tree(text(desk.get(url)))
        assert [n.text() for n in tree.root.walk() if n.tag == "h1"] == ["Now serving"], url
    resp = desk.post("/kiosk?lang=en", {"service": "repair"})
    assert resp.status_code == 302
    tree = Tree(text(desk.get(resp.location)))
    [h1] = [n for n in tree.root.walk() if n.tag == "h1"]
    assert h1.text() == "Your number R-001"


def test_each_printed_slip_has_an_h1_naming_it(desk, make_ticket):
    """A screen reader (or a search of the browser's tabs) finds what a slip is and whose: the
    receipt, the shelf label, the delivery receipt and the till slip each have one h1."""
    ticket = make_ticket("delivered")
    number = ticket.number
    for url, heading in ((f"/tickets/{ticket.id}/receipt?lang=en", f"Intake receipt {number}"),
                         (f"/tickets/{ticket.id}/label?lang=en", number),
                         (f"/tickets/{ticket.id}/delivery-receipt?lang=en",
                          f"Delivery receipt {number}"),
                         ("/desk/takings/slip?lang=en", "Till slip")):
        tree = Tree(text(desk.get(url)))
        h1s = [" ".join(n.text().split()) for n in tree.root.walk() if n.tag == "h1"]
        assert len(h1s) == 1 and h1s[0].startswith(heading), (url, h1s)
