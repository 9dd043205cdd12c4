"""The admin's irreversible buttons, in a real browser: each asks before it acts."""
from playwright.sync_api import expect
from sqlalchemy import select

from servicedesk.extensions import db
from servicedesk.models import ApiToken, User

from .conftest import login


def fresh(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def test_deactivating_a_user_and_revoking_a_token_take_a_second_tap(live_server, page, users):
    from servicedesk.services.people import issue_token
    tech = users["technician"]
    issue_token(tech, name="bench scanner")
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == tech.id))
    login(page, live_server.url, "admin1")
    page.goto(f"{live_server.url}/admin/users/{tech.id}")

    # The token first: "Revoke…" opens the step, and only its own button revokes.
    step = page.locator('[data-confirm-step="revoke"]')
    revoke = step.locator("button[data-confirm]")
    expect(revoke).to_be_hidden()
    step.locator("summary").click()
    expect(revoke).to_be_visible()
    expect(revoke).to_contain_text("bench scanner")
    assert fresh(ApiToken, token.id).revoked_at is None  # opening it revoked nothing
    revoke.click()
    expect(page.locator(".alert-success")).to_be_visible()
    assert fresh(ApiToken, token.id).revoked_at is not None

    step = page.locator('[data-confirm-step="deactivate"]')
    deactivate = step.locator("button[data-confirm]")
    expect(deactivate).to_be_hidden()
    step.locator("summary").click()
    expect(deactivate).to_be_visible()
    expect(deactivate).to_contain_text(tech.username)
    assert fresh(User, tech.id).active is True
    deactivate.click()
    expect(page.locator(".alert-success")).to_be_visible()
    assert fresh(User, tech.id).active is False
