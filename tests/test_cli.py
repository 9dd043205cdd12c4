"""The commands of DESIGN section 5: create-user, api-token, seed-demo."""
from collections import Counter

import pytest
from sqlalchemy import func, select

from servicedesk.errors import ValidationError
from servicedesk.extensions import db
from servicedesk.lifecycle import TICKET_STATES, verify_chain
from servicedesk.models import Customer, Notification, Ticket, User
from servicedesk.services.people import authenticate, check_password_rules

from .conftest import INTAKE


def run(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    return result, result.output


def user_count(name=None) -> int:
    query = select(func.count()).select_from(User)
    if name:
        query = query.where(User.username == name)
    return db.session.scalar(query)


def test_create_user(app):
    result, text = run(app, "create-user", "nima", "--role", "technician", "--password",
                       "a long enough one", "--full-name", "Nima N")
    assert result.exit_code == 0, text
    assert "nima" in text
    user = db.session.scalar(select(User).where(User.username == "nima"))
    assert (user.role, user.full_name, user.active) == ("technician", "Nima N", True)
    assert user.branch is not None
    assert user.password_hash != "a long enough one"
    assert authenticate("nima", "a long enough one")[0].id == user.id


def test_create_user_refuses_a_name_taken_in_another_letter_case(app):
    assert run(app, "create-user", "nima", "--role", "technician", "--password",
               "a long enough one")[0].exit_code == 0
    result, text = run(app, "create-user", "Nima", "--role", "technician", "--password",
                       "a long enough one")
    assert result.exit_code != 0 and "خطا:" in text  # says it exists (in the shop's language)
    assert db.session.scalar(select(func.count(User.id))) == 1


def test_create_user_rejects_a_bad_role(app):
    result, text = run(app, "create-user", "boss", "--role", "owner", "--password",
                       "a long enough one")
    assert result.exit_code != 0
    assert "--role" in text and "owner" in text
    for role in ("reception", "technician", "manager", "admin"):
        assert role in text  # names the roles it takes
    assert user_count("boss") == 0


def test_create_user_rejects_a_short_password(app):
    result, text = run(app, "create-user", "shorty", "--role", "reception", "--password", "1234567")
    assert result.exit_code != 0
    with pytest.raises(ValidationError) as rule:
        check_password_rules("1234567")
    # the password rule's own message (in the shop's language), naming the field
    assert rule.value.message in text
    assert "password" in text
    assert "Traceback" not in text
    assert user_count("shorty") == 0


@pytest.mark.parametrize("password", ["12345678", "Password", "qwertyui", "1q2w3e4r",
                                      "ضصثقفغعه", "۱۲۳۴۵۶۷۸", "zzzzzzzz"])
def test_create_user_rejects_a_very_common_password_saying_why(app, password):
    """Long enough but among the first tried (on the Persian keyboard too: "ضصثقفغعه" is
    "qwertyui" typed with the Persian layout on)."""
    result, text = run(app, "create-user", "common", "--role", "reception", "--password",
                       password)
    assert result.exit_code != 0
    with pytest.raises(ValidationError) as rule:
        check_password_rules(password)
    assert rule.value.message in text
    assert "Traceback" not in text
    assert user_count("common") == 0
    check_password_rules("a new one 2026")  # a long, uncommon one passes


def test_create_user_rejects_a_duplicate_name(app):
    first, text = run(app, "create-user", "reza", "--role", "reception", "--password",
                      "first password")
    assert first.exit_code == 0, text
    second, text = run(app, "create-user", "reza", "--role", "manager", "--password",
                       "second password")
    assert second.exit_code != 0
    assert text.strip().startswith("خطا:") and "Traceback" not in text
    assert user_count("reza") == 1
    assert db.session.scalar(select(User.role).where(User.username == "reza")) == "reception"


def test_create_user_without_password_prints_a_generated_one(app):
    result, text = run(app, "create-user", "gen", "--role", "manager")
    assert result.exit_code == 0, text
    password = text.strip().splitlines()[-1].split(":", 1)[1].strip()
    assert len(password) >= 8
    assert authenticate("gen", password)[0] is not None


def test_api_token_prints_a_working_token_on_its_last_line(app):
    result, text = run(app, "create-user", "desk", "--role", "reception", "--password",
                       "a long enough one")
    assert result.exit_code == 0, text
    result, text = run(app, "api-token", "desk")
    assert result.exit_code == 0, text
    lines = text.rstrip("\n").split("\n")
    token = lines[-1]
    assert token == token.strip() and " " not in token and len(token) >= 32

    client = app.test_client()
    response = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["items"] == []
    assert client.get("/api/v1/tickets").status_code == 401
    assert client.get("/api/v1/tickets",
                      headers={"Authorization": f"Bearer {token}x"}).status_code == 401

    # each call prints a new token; both work
    _, text2 = run(app, "api-token", "desk")
    token2 = text2.rstrip("\n").split("\n")[-1]
    assert token2 != token
    assert client.get("/api/v1/tickets",
                      headers={"Authorization": f"Bearer {token2}"}).status_code == 200


def test_api_token_for_an_unknown_user(app):
    result, text = run(app, "api-token", "nobody")
    assert result.exit_code != 0
    assert "nobody" in text


def test_seed_demo_fills_every_state_and_is_safe_twice(app):
    result, text = run(app, "seed-demo")
    assert result.exit_code == 0, text
    db.session.expire_all()
    states = Counter(db.session.scalars(select(Ticket.state)))
    assert set(states) == set(TICKET_STATES), states
    assert len(TICKET_STATES) == 9
    users_after_first = user_count()
    assert users_after_first >= 5
    roles = set(db.session.scalars(select(User.role)))
    assert {"reception", "technician", "manager", "admin", "kiosk"} <= roles
    customers_after_first = db.session.scalar(select(func.count()).select_from(Customer))
    assert all(verify_chain(t) is None for t in db.session.scalars(select(Ticket)))
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0

    result, text = run(app, "seed-demo")
    assert result.exit_code == 0, text
    assert "password" not in text  # no new accounts the second time
    db.session.expire_all()
    assert user_count() == users_after_first
    names = list(db.session.scalars(select(User.username)))
    assert len(names) == len(set(names))
    assert db.session.scalar(select(func.count()).select_from(Customer)) == \
        customers_after_first
    assert set(db.session.scalars(select(Ticket.state))) == set(TICKET_STATES)
    numbers = list(db.session.scalars(select(Ticket.number)))
    assert len(numbers) == len(set(numbers))


def test_create_user_puts_the_account_at_the_branch_named(app):
    """A second branch's receptionist, a workshop's technician of every branch, and a code no
    branch has (refused in words, nobody created)."""
    from servicedesk.models import Branch
    north = Branch(name="North", code="N")
    db.session.add(north)
    db.session.commit()
    result, text = run(app, "create-user", "nrec", "--role", "reception", "--branch", "n",
                       "--password", "long enough pw")
    assert result.exit_code == 0, text
    result, text = run(app, "create-user", "wtech", "--role", "technician", "--branch",
                       "none", "--password", "long enough pw")
    assert result.exit_code == 0, text
    result, text = run(app, "create-user", "x", "--role", "reception", "--branch", "Q",
                       "--password", "long enough pw")
    # in the shop's language (Persian here), as every word of the command
    assert result.exit_code == 1 and "هیچ شعبه‌ای کد Q را ندارد" in text and "N" in text
    db.session.expire_all()
    by_name = {u.username: u.branch_id for u in db.session.scalars(select(User))}
    assert by_name["nrec"] == north.id and by_name["wtech"] is None and "x" not in by_name


def test_the_demo_shops_customers_are_never_texted(app, make_ticket):
    """The demo's phone numbers look real and may be people's: a shop that starts on the
    demo's database texts none of them, not even the reminders due days later; its own
    customers are texted as usual."""
    from datetime import timedelta

    from servicedesk.models._types import utcnow
    from servicedesk.services import reminders
    result, text = run(app, "seed-demo")
    assert result.exit_code == 0 and "پیامکی فرستاده نمی‌شود" in text
    db.session.expire_all()
    assert all(c.sms_opt_out for c in db.session.scalars(select(Customer)))
    for days in (3, 5, 10):  # the estimate and the pickup reminders fall due
        later = utcnow() + timedelta(days=days)
        reminders.remind(now=later.replace(hour=8, minute=0))  # 11:30 in Tehran
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0
    ours = make_ticket("intake", intake={**INTAKE, "customer": {
        "name": "Real Customer", "phone": "09357654321"}})
    assert [n.to for n in ours.notifications] == ["+989357654321"]


def test_seed_demo_users_can_log_in_with_the_printed_passwords(app):
    result, text = run(app, "seed-demo")
    assert result.exit_code == 0, text
    printed = [line for line in text.splitlines() if line.startswith("کاربر ")]
    assert len(printed) >= 5
    for line in printed:
        name = line.split()[1]
        password = line.rsplit("گذرواژه:", 1)[1].strip()
        assert authenticate(name, password)[0] is not None, line


def test_backup_copies_the_embedded_database_and_the_copy_opens(app, make_ticket, tmp_path):
    from servicedesk import create_app
    make_ticket("repair")
    make_ticket("intake")
    target = tmp_path / "copy.db"
    result, out = run(app, "backup", str(target))
    if db.engine.dialect.name != "sqlite":  # PostgreSQL: pg_dump's job, said in words
        assert result.exit_code != 0 and "pg_dump" in out and not target.exists()
        return
    assert result.exit_code == 0, out
    assert "(۲ پذیرش)" in out
    assert target.stat().st_mode & 0o777 == 0o600  # customers and staff: the owner's only
    copy = create_app({"DATABASE_URL": f"sqlite:///{target}", "SECRET_KEY": "x" * 32})
    with copy.app_context():
        states = sorted(db.session.scalars(select(Ticket.state)))
    assert states == ["intake", "repair"]
    again, out = run(app, "backup", str(target))  # never over an earlier backup
    assert again.exit_code != 0 and "از قبل هست" in out
    # a folder that is not there: said in words, not a traceback
    nowhere, out = run(app, "backup", str(tmp_path / "no" / "such" / "copy.db"))
    assert nowhere.exit_code == 1 and "پوشهٔ " in out and "وجود ندارد" in out
    assert isinstance(nowhere.exception, SystemExit)  # a ClickException's exit, no traceback
    # a folder nobody may write a database in (not even root: /proc): refused in words
    refused, out = run(app, "backup", "/proc/servicedesk-copy.db")
    assert refused.exit_code == 1 and "نوشتن /proc/servicedesk-copy.db ممکن نشد" in out
    assert isinstance(refused.exception, SystemExit)


@pytest.mark.parametrize("name", ["bad name", "a", "semi;colon", "tab\there"])
def test_create_user_refuses_a_name_the_users_page_refuses(app, name):
    """One rule for a user name, whichever way the account is made: a name with a space (or
    one letter) was taken by the command and refused by the admin's users page."""
    result, text = run(app, "create-user", name, "--role", "reception", "--password",
                       "a long enough one")
    assert result.exit_code != 0 and "خطا:" in text and "Traceback" not in text
    assert user_count(name) == 0


@pytest.mark.parametrize("name", ["نیما", "sara.k", "desk-2", "r@shop"])
def test_create_user_takes_the_names_the_users_page_takes(app, name):
    result, text = run(app, "create-user", name, "--role", "reception", "--password",
                       "a long enough one")
    assert result.exit_code == 0, text
    assert user_count(name) == 1


@pytest.mark.parametrize("args", [
    ["create-user", "nima", "--role", "reception", "--password", "a long enough one"],
    ["api-token", "nima"], ["seed-demo"], ["sweep-outbox"], ["close-unanswered"],
    ["remind-customers"], ["verify-audit"]])
def test_a_command_on_a_database_without_tables_says_to_run_init_db(tmp_path, args):
    """A script that forgot init-db (or points DATABASE_URL at a new file) is told so in one
    line, not with a database traceback."""
    from .test_migrations import bare_app
    app = bare_app(f"sqlite:///{tmp_path / 'new.db'}", tmp_path)
    with app.app_context():  # as `flask --app wsgi ...` runs every command
        result = app.test_cli_runner().invoke(args=args)
        db.engine.dispose()
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "init-db" in result.output


def test_create_user_and_api_token_speak_the_shops_language(app):
    """One language per output, the shop's (Persian here): the command's own words were
    English beside the domain's Persian errors."""
    import re
    result, text = run(app, "create-user", "gen", "--role", "manager")
    assert result.exit_code == 0, text
    words = re.sub(r"gen|\S{16,}", "", text)  # the name typed, the password printed
    assert not re.search(r"[A-Za-z]{3,}", words) and "ساخته شد" in text, text
    result, text = run(app, "api-token", "gen")
    assert result.exit_code == 0, text
    said = text.rstrip("\n").split("\n")
    assert said[0].startswith("انقضا: ") and not re.search(r"[A-Za-z]", said[0]), said
    result, text = run(app, "api-token", "nobody")
    assert result.exit_code != 0 and "هیچ کاربر فعالی با نام nobody نیست" in text


def shop_speaks(app, language):
    """The shop's language (SERVICEDESK_LOCALE) switched for the commands run next."""
    from flask_babel import refresh
    app.config["SERVICEDESK_LOCALE"] = language
    refresh()


def test_the_shops_other_commands_speak_persian_in_a_persian_shop(app, make_ticket, tmp_path):
    """seed-demo, sweep-outbox, close-unanswered, remind-customers, verify-audit, backup and
    copy-db said everything in English to a Persian shop, their errors too."""
    import re
    said = {}
    for args in (["seed-demo"], ["sweep-outbox"], ["close-unanswered"], ["remind-customers"],
                 ["verify-audit"]):
        result, said[args[0]] = run(app, *args)
        assert result.exit_code == 0, said[args[0]]
    assert "کاربر reza (کارمند پذیرش)، گذرواژه: " in said["seed-demo"]
    assert "(به مشتریان نمایشی پیامکی فرستاده نمی‌شود" in said["seed-demo"]
    assert "password" not in said["seed-demo"] and "ticket" not in said["seed-demo"]
    assert said["sweep-outbox"].strip() == "۰ پیام دوباره به فرستنده سپرده شد."
    assert "بسته شد" in said["close-unanswered"]
    assert said["remind-customers"].startswith("یادآوری‌ها: ")
    assert said["verify-audit"].strip() == "زنجیرهٔ ممیزی سالم است."
    for command in ("sweep-outbox", "close-unanswered", "remind-customers", "verify-audit"):
        assert not re.search(r"[A-Za-z]", said[command]), said[command]
    # the errors, Click's "Error:" with them
    target = tmp_path / "copy.db"
    target.write_bytes(b"")
    result, text = run(app, "backup", str(target))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    if db.engine.dialect.name == "sqlite":
        assert text.strip() == f"خطا: {target} از قبل هست؛ نام فایل تازه‌ای بدهید.", text
    else:
        assert text.startswith("خطا: پایگاه داده SQLite نیست") and "pg_dump" in text, text
    result, text = run(app, "copy-db", str(tmp_path / "nowhere.db"))
    assert result.exit_code == 1 and "Error" not in text, text
    assert text.startswith("خطا: ") and "نه نشانی پایگاه داده است" in text, text


def test_the_shops_other_commands_speak_english_in_an_english_shop(app, tmp_path):
    shop_speaks(app, "en")
    result, text = run(app, "seed-demo")
    assert result.exit_code == 0 and "User reza (Reception), password: " in text, text
    assert "Ticket " in text and ": Waiting for parts" in text, text
    assert run(app, "sweep-outbox")[1].strip() == \
        "Handed back to the sender: 0 notification(s)."
    assert run(app, "remind-customers")[1].startswith("Reminders: 0 estimate(s) not answered")
    assert run(app, "verify-audit")[1].strip() == "Audit chain intact."
    result, text = run(app, "copy-db", str(tmp_path / "nowhere.db"))
    assert result.exit_code == 1 and text.startswith("Error: ") and \
        "is neither a database URL nor an existing SQLite file" in text, text


# --- --help and a mistyped command, in the shop's language --------------------------------------

def test_help_is_in_the_shops_language(app):
    """`--help` of our commands: the command's and its options' words in Persian for a Persian
    shop, the options' names and choices as they are typed."""
    result, text = run(app, "create-user", "--help")
    assert result.exit_code == 0, text
    assert text.startswith("کاربرد: ") and "create-user [OPTIONS] NAME" in text, text
    assert "یک حساب کارمند می‌سازد." in text and "گزینه‌ها:" in text
    assert "--branch CODE" in text and "کد شعبه (A, T1 و...)" in text
    assert "[reception|technician|manager|admin|kiosk]" in text and "[الزامی]" in text
    assert "همین راهنما را نشان می‌دهد و بیرون می‌رود." in text
    assert "Create a staff account" not in text and "Show this message" not in text
    result, text = run(app, "check", "--help")
    assert result.exit_code == 0 and "پیکربندی را بررسی می‌کند" in text, text
    shop_speaks(app, "en")
    result, text = run(app, "create-user", "--help")
    assert "Create a staff account." in text and "the branch's code (A, T1...)" in text, text
    assert text.startswith("Usage: ") and "Options:" in text


@pytest.mark.parametrize("args, said", [
    (["create-user"], "خطا: آرگومان 'NAME' داده نشده است."),
    (["create-user", "nima"], "خطا: گزینهٔ '--role' داده نشده است. یکی از این‌ها را انتخاب "
                              "کنید: reception، technician، manager، admin، kiosk."),
    (["create-user", "nima", "--role", "boss"],
     "خطا: مقدار '--role' نادرست است: 'boss' جزو این‌ها نیست: reception، technician، manager، "
     "admin، kiosk"),
    (["api-token", "nima", "--days", "0"],
     "خطا: مقدار '--days' نادرست است: '0' عددی صحیح از ۱ تا ۳٬۶۵۰ نیست"),
    (["api-token", "nima", "--label"], "خطا: گزینهٔ '--label' مقدار می‌خواهد."),
    (["close-unanswered", "--dayz", "3"], "خطا: چنین گزینه‌ای وجود ندارد: --dayz (منظورتان --days "
                                         "بود؟)"),
])
def test_a_mistyped_command_is_told_in_the_shops_language(app, args, said):
    """Click's usage errors said in Persian, as Click lays them out (the usage line, where
    the help is, the error) and with its exit status, 2."""
    result, text = run(app, *args)
    assert result.exit_code == 2, text
    assert text.startswith(f"کاربرد: servicedesk {args[0]} [OPTIONS]"), text
    assert f"برای راهنما 'servicedesk {args[0]} --help' را بزنید." in text
    assert text.rstrip().endswith(said), text


def test_a_mistyped_command_is_told_in_english_in_an_english_shop(app):
    shop_speaks(app, "en")
    result, text = run(app, "create-user", "nima", "--role", "boss")
    assert result.exit_code == 2, text
    assert text.startswith("Usage: servicedesk create-user [OPTIONS] NAME"), text
    assert text.rstrip().endswith("Error: Invalid value for '--role': 'boss' is not one of "
                                  "reception, technician, manager, admin, kiosk"), text


# --- verify-audit's details ---------------------------------------------------------------------

def _lower_the_amount_paid(ticket) -> None:
    from sqlalchemy import update
    db.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(amount_paid=2000))
    db.session.commit()
    db.session.expire_all()


def test_verify_audit_names_what_disagrees_in_the_shops_language(app, make_ticket):
    """What a ticket's rows disagree on was English beside the Persian "Ticket N:"; the
    events' names (deliver) stay as the trail records them."""
    ticket = make_ticket("delivered")
    _lower_the_amount_paid(ticket)
    result, text = run(app, "verify-audit")
    assert result.exit_code == 1, text
    assert f"پذیرش {ticket.number}: مبلغ پرداختی با رویداد deliver نمی‌خواند" in text, text
    assert "differs" not in text


def test_verify_audit_names_what_disagrees_in_english_in_an_english_shop(app, make_ticket):
    ticket = make_ticket("delivered")
    _lower_the_amount_paid(ticket)
    shop_speaks(app, "en")
    result, text = run(app, "verify-audit")
    assert result.exit_code == 1, text
    assert f"Ticket {ticket.number}: the amount paid differs from the deliver event" in text
