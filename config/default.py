"""Safe defaults. Secrets come only from the environment (see servicedesk.create_app)."""
from datetime import timedelta

# DATABASE_URL unset: SQLite file in the instance folder (resolved in create_app).
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
SQLALCHEMY_TRACK_MODIFICATIONS = False

REDIS_URL = None  # unset: notifications are sent in-process after commit
SMS_BACKEND = "console"
TWILIO_ACCOUNT_SID = None
TWILIO_AUTH_TOKEN = None
TWILIO_FROM_NUMBER = None
TWILIO_MESSAGING_SERVICE_SID = None
TWILIO_API_BASE_URL = None
TWILIO_TIMEOUT = 10
PUBLIC_BASE_URL = None

SERVICEDESK_LOCALE = "fa"
SERVICEDESK_TIMEZONE = "Asia/Tehran"
LANGUAGES = ("fa", "en")
BABEL_TRANSLATION_DIRECTORIES = "translations"

SHOP_NAME = "Servicedesk"
SHOP_PHONE = ""
MONEY_DISPLAY = "toman"  # or "rial"; money is always stored in rials
DEFAULT_BRANCH_NAME = "Main"
DEFAULT_BRANCH_CODE = "A"

# "thread": a daemon thread sends after commit; "sync": send right after commit, in the
# committing thread (tests and scripts, where nothing should run behind their back).
NOTIFY_INPROCESS = "thread"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
REMEMBER_COOKIE_SAMESITE = "Lax"
REMEMBER_COOKIE_DURATION = timedelta(days=14)
PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
SESSION_PROTECTION = "strong"
WTF_CSRF_TIME_LIMIT = None  # a reception screen stays open all shift

RATELIMIT_STORAGE_URI = "memory://"
RATELIMIT_HEADERS_ENABLED = True

# Service types offered at intake (codes; their names are translated in the UI).
SERVICE_TYPES = ("repair", "warranty", "software", "data_recovery")
# Test phone numbers allowed even though they are not mobiles (Twilio's magic numbers).
SMS_TEST_NUMBERS = ()
