"""The peer: django-helpdesk, from PyPI, in its own virtualenv, as a minimal Django project.

What a shop would otherwise pick. The benchmark measures its nearest operations through its own
REST API (token authentication, like Servicedesk's bearer tokens):

- ticket creation: ``POST /api/tickets/`` (``TicketSerializer`` -> ``TicketForm.save``: the
  ticket, its "Ticket Opened" follow-up, the e-mails to the submitter and the queue rendered
  and handed to Django's dummy mail backend, which drops them);
- a status change: ``POST /api/followups/`` with ``new_status`` (``helpdesk.update_ticket``: the
  follow-up, the TicketChange row, the status, the e-mails as above);
- the ticket page: ``GET /tickets/ID/`` as a logged-in staff member (``view_ticket``: the
  ticket, its follow-ups and changes, the update form), with a session made by ``setup``.

Usage (the first with any Python 3.11+, the others with the peer's own Python)::

    python3 bench/peer_django_helpdesk.py install              # /tmp/sd-peer/venv
    /tmp/sd-peer/venv/bin/python bench/peer_django_helpdesk.py setup DATABASE_URL
        # writes the project, migrates, creates the superuser, its API token and a queue;
        # prints {"token", "queue", "user"} as JSON on the last line
    PEER_DATABASE_URL=... /tmp/sd-peer/venv/bin/gunicorn --chdir /tmp/sd-peer/project \
        peerproject.wsgi:application

DATABASE_URL is ``sqlite:////path/file.db`` or ``postgresql://user@host:port/name``. Everything
lives under /tmp/sd-peer (``SD_PEER_ROOT``): nothing of the peer enters the repository.
"""
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

PEER_ROOT = Path(os.environ.get("SD_PEER_ROOT", "/tmp/sd-peer"))
VENV = PEER_ROOT / "venv"
PROJECT = PEER_ROOT / "project"
PYTHON = VENV / "bin" / "python"
# The versions measured (pip resolved these for django-helpdesk on Python 3.11).
PACKAGES = ["django-helpdesk==2.6.1", "Django==5.2.19", "djangorestframework==3.18.3",
            "gunicorn==27.0.1", "psycopg[binary]==3.3.9"]

SETTINGS = '''"""Minimal Django project around django-helpdesk, for the benchmark only."""
import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "benchmark-only-not-a-deployment-" + "x" * 32
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django.contrib.sites", "django.contrib.humanize",
    "rest_framework", "rest_framework.authtoken", "helpdesk",
]
SITE_ID = 1
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "peerproject.urls"
WSGI_APPLICATION = "peerproject.wsgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [], "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages"]},
}]


def _database(url):
    if url.startswith("sqlite:///"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url[len("sqlite:///"):]}
    parts = urlsplit(url)
    return {"ENGINE": "django.db.backends.postgresql", "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "", "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "", "PORT": str(parts.port or ""),
            # persistent connections: Django's counterpart of Servicedesk's pool
            "CONN_MAX_AGE": 600, "CONN_HEALTH_CHECKS": True}


DATABASES = {"default": _database(os.environ["PEER_DATABASE_URL"])}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
TIME_ZONE = "Asia/Tehran"
LANGUAGE_CODE = "en"
STATIC_URL = "/static/"
MEDIA_ROOT = str(BASE_DIR / "media")
LOGIN_URL = "/login/"
# Mail is rendered and handed over, then dropped (Servicedesk's SMS are queued, not sent inline).
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
DEFAULT_FROM_EMAIL = "helpdesk@example.com"
HELPDESK_TEAMS_MODE_ENABLED = False   # else it needs pinax-teams
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}
'''

URLS = '''from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("helpdesk.urls", namespace="helpdesk")),
]
'''

WSGI = '''import os
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproject.settings")
application = get_wsgi_application()
'''


def install() -> None:
    """Create the peer's virtualenv and install django-helpdesk into it from PyPI."""
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    write_project()


def write_project() -> None:
    package = PROJECT / "peerproject"
    package.mkdir(parents=True, exist_ok=True)
    for name, text in {"__init__.py": "", "settings.py": SETTINGS, "urls.py": URLS,
                       "wsgi.py": WSGI}.items():
        (package / name).write_text(text)
    manage = PROJECT / "manage.py"
    manage.write_text("import os, sys\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', "
                      "'peerproject.settings')\nfrom django.core.management import "
                      "execute_from_command_line\nexecute_from_command_line(sys.argv)\n")


def setup(database_url: str) -> dict:
    """Migrate a fresh database and create what the benchmark uses. Runs in the peer's venv."""
    write_project()
    os.environ["PEER_DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproject.settings")
    sys.path.insert(0, str(PROJECT))
    import django
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from helpdesk.models import Queue
    from rest_framework.authtoken.models import Token

    call_command("migrate", interactive=False, verbosity=0)
    user = get_user_model().objects.create_superuser("bench", "bench@example.com",
                                                     "bench-password-not-used")
    queue = Queue.objects.create(title="Repairs", slug="repairs",
                                 email_address="repairs@example.com")
    token = Token.objects.create(user=user)
    session = _logged_in_session(user)
    import helpdesk
    return {"token": token.key, "queue": queue.id, "user": user.id, "session": session,
            "versions": {"django": django.get_version(),
                         "django-helpdesk": getattr(helpdesk, "__version__", None)
                         or _dist_version("django-helpdesk")}}


def _logged_in_session(user) -> str:
    """A staff session, as the login form would leave it: its key is the ``sessionid``
    cookie the ticket page scenario sends (the peer's pages take no API token)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def _dist_version(name: str) -> str:
    from importlib.metadata import version
    return version(name)


def versions() -> dict:
    """The installed peer versions, asked of the peer's own Python."""
    out = subprocess.run([str(PYTHON), "-c", "import json; from importlib.metadata import "
                          "version as v; print(json.dumps({n: v(n) for n in ('django-helpdesk',"
                          " 'Django', 'djangorestframework', 'gunicorn')}))"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "install":
        install()
    elif command == "setup" and len(sys.argv) == 3:
        print(json.dumps(setup(sys.argv[2])))
    else:
        sys.exit(__doc__)
