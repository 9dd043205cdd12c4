"""The manager's reports in a real browser, in Persian: the dashboard draws its charts and
refreshes itself, a report keeps its filters in the URL, and its CSV downloads with a BOM and
Persian in it."""
import csv
import io
from urllib.parse import unquote

from ..test_reports import history  # noqa: F401  (the imported history fixture)
from .conftest import login


def test_dashboard_draws_its_charts_and_refreshes(live_server, page, history):  # noqa: F811
    problems = []

    def console(msg):  # script errors and CSP violations; the missing favicon is no problem
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            problems.append(msg.text)
    page.on("console", console)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    login(page, live_server.url, "manager1")
    page.click("nav a[href='/reports/']")  # the manager's menu has the reports
    page.wait_for_url(f"{live_server.url}/reports/")
    assert page.locator("html").get_attribute("dir") == "rtl"
    # Chart.js drew every chart (no inline script: the data came from JSON blocks)
    for chart in ("chart-states", "chart-turnaround", "chart-satisfaction"):
        drawn = page.evaluate(
            "id => !!Chart.getChart(document.querySelector(`canvas[data-chart='${id}']`))", chart)
        assert drawn, chart
    # right to left: the x axis runs from the right, the y axis sits on the right
    assert page.evaluate("Chart.getChart(document.querySelector(\"canvas[data-chart="
                         "'chart-turnaround']\")).options.scales.y.position") == "right"
    assert page.locator("[data-count=open]").inner_text() == "۱"  # T4, in Persian digits
    # the value axes are numbered in Persian digits, zero included
    for chart in ("chart-turnaround", "chart-satisfaction"):
        ticks = page.evaluate("id => Chart.getChart(document.querySelector(`canvas[data-chart="
                              "'${id}']`)).scales.y.ticks.map(t => t.label)", chart)
        assert ticks and "۰" in ticks, ticks
        assert not any(ch.isascii() and ch.isdigit() for t in ticks for ch in str(t)), ticks
        assert not any("," in str(t) for t in ticks), ticks  # ٬ as in the tables
    # tickets are counted in whole numbers: no "۰٫۵" step on the states chart's axis
    ticks = page.evaluate("Chart.getChart(document.querySelector(\"canvas[data-chart="
                          "'chart-states']\")).scales.y.ticks.map(t => t.label)")
    assert ticks and not any("٫" in str(t) or "." in str(t) for t in ticks), ticks
    # right to left, the x axis's last (leftmost) slanted label has room: it is not cut off
    padding = page.evaluate("Chart.getChart(document.querySelector(\"canvas[data-chart="
                            "'chart-turnaround']\")).options.layout.padding.left")
    assert padding >= 48
    # the refresh fetches the numbers again and says when
    page.evaluate("document.querySelector('[data-refresh-url]')"
                  ".dispatchEvent(new Event('reports:refresh'))")
    page.wait_for_selector("[data-refreshed]")
    assert page.locator("[data-updated]").inner_text().strip() != ""
    assert problems == []


def test_report_with_filters_in_the_url_downloads_its_csv(live_server, page, history,  # noqa: F811
                                                          tmp_path):
    login(page, live_server.url, "manager1")
    url = (f"{live_server.url}/reports/turnaround?from=2026-01-01&to=2026-01-31"
           "&group_by=technician")
    page.goto(url)
    # the filters came from the URL into the form (Jalali, as the date picker writes them, in
    # the page's Persian digits)
    assert page.locator("input[name=from]").input_value() == "۱۴۰۴/۱۰/۱۱"
    assert page.locator("select[name=group_by]").input_value() == "technician"
    table = page.locator("#report-table").inner_text()
    assert "رضا احمدی" in table
    # changing a filter and showing again keeps everything in the URL (a bookmark)
    page.select_option("select[name=group_by]", "jalali_month")
    page.click("form.report-filters button[type=submit]")
    page.wait_for_url(lambda u: "group_by=jalali_month" in u)
    assert "from=۱۴۰۴/۱۰/۱۱" in unquote(page.url)
    with page.expect_download() as info:
        page.click("a[data-export=csv]")
    download = info.value
    assert download.suggested_filename == "turnaround_2026-01-01_2026-01-31.csv"
    path = tmp_path / "report.csv"
    download.save_as(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for Persian
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    labels = {row[1] for row in rows[1:]}
    assert "دی ۱۴۰۴" in labels  # the Jalali month, in Persian
    dey = {row[2]: row for row in rows[1:] if row[0] == "1404-10"}
    assert dey["pickup"][4] == "3"


def test_excel_download_from_the_costs_page(live_server, page, history, tmp_path):  # noqa: F811
    from openpyxl import load_workbook
    login(page, live_server.url, "manager1")
    page.goto(f"{live_server.url}/reports/costs?from=2026-01-01&to=2026-01-31"
              "&group_by=technician")
    with page.expect_download() as info:
        page.click("a[data-export=xlsx]")
    path = tmp_path / "costs.xlsx"
    info.value.save_as(path)
    ws = load_workbook(path).active
    assert ws.sheet_view.rightToLeft is True
    names = {row[1] for row in ws.iter_rows(min_row=2, values_only=True)}
    assert "رضا احمدی" in names


def test_the_costs_table_fits_a_desk_screen_in_persian(live_server, page, history):  # noqa: F811
    """Thirteen columns on a 1280 px screen: the unit is said once per column, in its header,
    the headers wrap, and the numbers read as Persian numbers (٫ and ٪, never a Latin point)."""
    login(page, live_server.url, "manager1")
    page.goto(f"{live_server.url}/reports/costs?from=2026-01-01&to=2026-03-31")
    table = page.locator("#report-table")
    width, room = page.evaluate("t => [t.scrollWidth, t.closest('.table-responsive')"
                                ".clientWidth]", table.element_handle())
    assert width <= room, f"the table is {width} px wide in {room} px: its end scrolls away"
    headers = table.locator("thead th").all_inner_texts()
    assert "جمع صورت‌حساب‌ها (تومان)" in [" ".join(h.split()) for h in headers]
    first = table.locator("tbody tr").first.locator("td").all_inner_texts()
    assert "۷۵٫۰٪" in first and "۳۸۰٬۰۰۰" in first, first
    assert not any("تومان" in cell or "." in cell for cell in first), first


def test_the_survey_chart_gives_the_response_rate_its_own_axis(live_server, page,
                                                                history):  # noqa: F811
    """A 1-5 score beside a 0-100 percentage on one axis: the score's bars were too short to
    read. The percentage has its own axis, on the other side."""
    login(page, live_server.url, "manager1")
    page.goto(f"{live_server.url}/reports/surveys?from=2026-01-01&to=2026-01-31"
              "&group_by=technician")
    page.wait_for_function("window.Chart && Chart.getChart(document.querySelector("
                           "\"canvas[data-chart='chart-survey']\"))")
    axes = page.evaluate("""() => { const c = Chart.getChart(document.querySelector(
        "canvas[data-chart='chart-survey']"));
        return c.data.datasets.map(d => d.yAxisID).concat([c.scales.y2.options.display,
                                                            c.scales.y.max]); }""")
    assert axes[:2] == ["y", "y2"] and axes[2] is True
    assert axes[3] <= 5  # the score's axis is scaled to the score
