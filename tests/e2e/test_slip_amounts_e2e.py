"""The amounts on the printed slips line up by place value, in Persian as in English: the
units of 1,400,000 under the units of 400,000 (tabular digits, one edge), on an 80 mm slip
and on a 58 mm one. A Persian amount is written "۴۰۰٬۰۰۰ تومان", the number on the right:
aligned by the unit word (the end of an RTL line), the numbers' units would not line up."""
import pytest
from playwright.sync_api import expect

from servicedesk.services import reception as reception_service

from ..conftest import actor_for
from .conftest import ARTIFACTS, login

# Where each amount's units, tens and thousands digits stand (the last, second-to-last and
# fourth-to-last digits of the figure: the digits are laid out left to right in both
# languages), for every amount cell of the slip.
DIGIT_EDGES = """(selector) => {
  const DIGIT = /[0-9\\u06f0-\\u06f9]/;
  return Array.from(document.querySelectorAll(selector)).map((el) => {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const digits = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.data.length; i++) {
        if (DIGIT.test(node.data[i])) digits.push([node, i]);
      }
    }
    const right = (k) => {
      if (digits.length < k) return null;
      const [node, i] = digits[digits.length - k];
      const range = document.createRange();
      range.setStart(node, i); range.setEnd(node, i + 1);
      return Math.round(range.getBoundingClientRect().right * 10) / 10;
    };
    return {text: el.textContent.trim(), units: right(1), tens: right(2), thousands: right(4)};
  });
}"""


def _lined_up(page, selector):
    cells = [c for c in page.evaluate(DIGIT_EDGES, selector)  # the amounts (not a name)
             if c["units"] is not None and ("toman" in c["text"] or "تومان" in c["text"])]
    assert len(cells) >= 3, cells
    for key in ("units", "tens", "thousands"):
        edges = {c[key] for c in cells if c[key] is not None}
        assert max(edges) - min(edges) < 0.6, (key, [(c["text"], c[key]) for c in cells])
    return cells


@pytest.mark.parametrize("paper", ["80", "58"])
@pytest.mark.parametrize("lang", ["fa", "en"])
def test_the_slips_amounts_line_up_by_place_value(live_server, page, make_ticket, users, lang,
                                                  paper):
    ticket = make_ticket("ready")  # lines of 1,200,000 and 200,000 toman; 1,400,000 due
    reception_service.deliver(ticket.id, actor_for("deliver", users), 13_500_000,
                              "Narges", differs_ok=True, payments=[
                                  {"method": "cash", "amount": 12_000_000},
                                  {"method": "card", "amount": 1_500_000}])
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/tickets/{ticket.id}/delivery-receipt?lang={lang}"
              f"&paper={paper}")
    expect(page.locator("[data-paid-part=card]")).to_be_visible()
    cells = _lined_up(page, ".slip-lines .amount, .slip-totals dd")
    assert len(cells) >= 6  # the two lines, due, paid, the two parts, the discount
    page.screenshot(path=str(ARTIFACTS / f"delivery-receipt-{lang}-{paper}.png"), full_page=True)
    page.goto(f"{live_server.url}/desk/takings/slip?lang={lang}&paper={paper}")
    _lined_up(page, "[data-till-methods] dd, [data-till-totals] dd[data-discounts], "
                    "[data-till-handbacks] .amount")
    page.screenshot(path=str(ARTIFACTS / f"till-slip-{lang}-{paper}.png"), full_page=True)
