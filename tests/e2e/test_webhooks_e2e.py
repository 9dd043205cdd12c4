"""The webhooks page in a real browser, in Persian: the administrator registers the accounting
program's address, copies the secret shown once, sees each delivery and sends a failed one
again; the receiver (a real local server) checks every signature."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from servicedesk.extensions import db
from servicedesk.models import WebhookDelivery, WebhookEndpoint

from ..fake_webhook import FakeWebhook
from .conftest import login

PERSIAN_DATE = re.compile(r"[۰-۹]{4}/[۰-۹]{2}/[۰-۹]{2}")


@pytest.fixture
def receiver():
    fake = FakeWebhook().start()
    yield fake
    fake.stop()


@pytest.fixture
def app_config():
    return {"WEBHOOK_RETRY_INTERVALS": []}  # one try: a refusal is failed at once


def test_the_admin_registers_a_webhook_and_resends_a_failed_delivery(
        live_server, page, users, receiver, make_ticket):
    login(page, live_server.url, "admin1")
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="وب‌هوک‌ها").click()
    page.get_by_role("link", name="وب‌هوک تازه").click()
    page.get_by_label("نام", exact=True).fill("حسابداری")
    page.get_by_label("نشانی گیرنده (URL)").fill("http://user:pw@127.0.0.1:9/x")
    page.get_by_label("همهٔ رویدادهای پذیرش").uncheck()
    page.get_by_label("تحویل به مشتری", exact=True).check()
    page.get_by_role("button", name="ذخیره").click()
    # refused, with the reason beside the field; nothing saved
    expect(page.locator("#url-error")).to_contain_text("نام کاربری و گذرواژه")
    assert db.session.scalar(select(WebhookEndpoint.id)) is None

    page.get_by_label("نشانی گیرنده (URL)").fill(receiver.url)
    page.get_by_role("button", name="ذخیره").click()
    secret = page.locator("[data-webhook-secret]").inner_text().strip()
    assert secret.startswith("whsec_")
    receiver.secret = secret
    page.get_by_role("link", name="انجام شد").click()
    expect(page.locator("body")).not_to_contain_text(secret)
    expect(page.locator("body")).to_contain_text(secret[-4:])

    receiver.always(503)
    make_ticket("delivered")  # only the hand-back is posted: it fails (one try)
    page.reload()
    row = page.locator("[data-deliveries] tbody tr").first
    expect(row).to_contain_text("ناموفق")
    # why, in the admin's words: the receiver's error, its code in Persian digits
    expect(row).to_contain_text("گیرنده خطا داد (HTTP ۵۰۳)")
    assert PERSIAN_DATE.search(row.inner_text())  # when, in the Jalali calendar

    receiver.always(None)
    row.get_by_role("button", name="ارسال دوباره").click()
    expect(page.locator(".alert-success")).to_be_visible()
    row = page.locator("[data-deliveries] tbody tr").first
    expect(row).to_contain_text("ارسال‌شده")
    expect(row.get_by_role("button", name="ارسال دوباره")).to_have_count(0)
    assert [r["json"]["event"] for r in receiver.delivered()] == ["deliver"]
    db.session.expire_all()
    (delivery,) = db.session.scalars(select(WebhookDelivery)).all()
    assert (delivery.status, delivery.response_code) == ("sent", 204)


def test_the_admin_deletes_a_webhook_after_confirming(live_server, page, app, users, receiver,
                                                      make_ticket):
    """In Persian: the delete button asks first; the webhook is then listed as deleted, with
    the day, and its page keeps the delivery that was waiting, cancelled with the reason."""
    from servicedesk.services import webhooks as svc
    app.config["WEBHOOK_RETRY_INTERVALS"] = [3600]  # a failure waits an hour for its retry
    hook, receiver.secret = svc.save_endpoint(None, name="حسابداری", url=receiver.url,
                                              events=None, every_event=True, active=True)
    receiver.always(503)
    make_ticket("intake")
    login(page, live_server.url, "admin1")
    page.goto(f"{live_server.url}/admin/webhooks/{hook.id}")
    page.locator("[data-confirm-step=delete] summary").click()
    page.get_by_role("button", name="حذفش کن").click()
    expect(page.locator(".alert-success")).to_contain_text("۱ ارسالِ در انتظار لغو شد")
    row = page.locator("[data-webhooks] tbody tr[data-deleted]")
    expect(row).to_contain_text("حذف‌شده در")
    assert PERSIAN_DATE.search(row.inner_text())
    page.screenshot(path="/tmp/hooks-list.png", full_page=True)
    row.get_by_role("link", name="حسابداری").click()
    expect(page.locator("[data-webhook-deleted]")).to_be_visible()
    delivery = page.locator("[data-deliveries] tbody tr").first
    expect(delivery).to_contain_text("لغو شد")
    expect(delivery).to_contain_text("فرستاده نشد: وب‌هوک پیش از آن حذف شد.")
    expect(page.get_by_role("button", name="ذخیره")).to_have_count(0)
    page.screenshot(path="/tmp/hooks-deleted.png", full_page=True)
    assert receiver.delivered() == []
