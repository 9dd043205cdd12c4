"""Browser fixtures: Playwright (sync API) driving Debian's chromium against the app served on
127.0.0.1. Screenshots of failing tests are kept in test-artifacts/."""
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from ..conftest import PASSWORD, LiveServer

ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        page = item.funcargs.get("page")
        if page is not None:
            ARTIFACTS.mkdir(exist_ok=True)
            try:
                page.screenshot(path=str(ARTIFACTS / f"{item.name}.png"), full_page=True)
            except Exception:  # noqa: BLE001 - the failure itself matters more
                pass


# A headless browser has no printer: a slip's window.print() would leave the page "being
# printed" and Page.pdf would then fail. The call is counted instead, so a test sees that a
# slip asked to be printed, and prints it to PDF itself.
COUNT_PRINTS = "window.print = function () { window.__prints = (window.__prints || 0) + 1; };"


def new_context(browser, **options):
    """A browser context whose pages count window.print() calls instead of printing."""
    context = browser.new_context(**options)
    context.add_init_script(COUNT_PRINTS)
    return context


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_server(app):
    server = LiveServer(app)
    app.config["PUBLIC_BASE_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture
def context(browser):
    context = new_context(browser, viewport={"width": 1280, "height": 900}, locale="fa-IR")
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page


@pytest.fixture
def phone_page(browser):
    """A phone-sized page, as a customer opening an SMS link."""
    context = new_context(browser, viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, locale="fa-IR")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def login(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
