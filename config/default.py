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

# The shop's own settings: these are the defaults; the admin's settings page overrides them.
SHOP_NAME = "Servicedesk"
SHOP_PHONE = ""
SHOP_ADDRESS = ""
MONEY_DISPLAY = "toman"  # or "rial"; money is always stored in rials
# Terms printed on the intake and delivery receipts, one per line ("" prints the built-in ones).
RECEIPT_TERMS = ""
DELIVERY_TERMS = ""
# Delivered tickets whose survey nobody answered close after this many days (the worker checks
# every AUTO_CLOSE_EVERY seconds; `flask close-unanswered` does the same from cron).
AUTO_CLOSE_DAYS = 7
AUTO_CLOSE_EVERY = 3600
# Reminder SMS after this many days (0: none; the settings page overrides): an estimate nobody
# answered, a device nobody collected. The worker writes them on the same clock as the
# auto-close (`flask remind-customers` from cron does the same); one reminder per estimate or
# hand-back, written and sent only between REMINDER_HOURS of the shop's day (start, end).
REMIND_ESTIMATE_DAYS = 2
REMIND_PICKUP_DAYS = 3
REMINDER_HOURS = (9, 20)
# An SMS sent later than this after it was written (seconds: its sender was stopped, a retry)
# waits for REMINDER_HOURS too, not to wake the customer.
SMS_LATE_AFTER = 3600
# Queue SMS: "your turn is near" when this many people (or fewer) are ahead.
QUEUE_NEAR_AHEAD = 3
# The queue's day starts at this hour of the shop's clock, not at midnight: a number taken at
# 23:50 is still called at 00:10, and the numbers restart in the morning.
QUEUE_DAY_STARTS = 4
# A device back within this many days of its delivery counts as a return (technicians report).
WARRANTY_DAYS = 90
# A loaner phone out this many days or more is marked overdue on the stock list (0: never;
# one whose ticket waits for pickup past the shop's limit for "ready" is, whatever its days).
LOANER_OVERDUE_DAYS = 14
# The customer's pages of a repair that ended (delivered, closed or cancelled) close this many
# days after its last event (0: never): an old SMS forwarded or a receipt thrown away no longer
# shows the customer's device and bill to whoever finds it. Staff logged in still open them.
PUBLIC_LINK_DAYS = 90
# PostgreSQL work_mem for the reports' one big query (SET LOCAL in its transaction).
REPORTS_WORK_MEM = "64MB"
# API tokens expire after this many days (flask api-token --days overrides it per token).
API_TOKEN_DAYS = 365
# Each web process keeps the shop's settings, service types and SMS texts this many seconds
# before reading them again: a change on the admin pages reaches the other processes within it.
SETTINGS_CACHE_SECONDS = 2
# The first branch's name; None: "Main branch" in the shop's language (SERVICEDESK_LOCALE).
DEFAULT_BRANCH_NAME = None
DEFAULT_BRANCH_CODE = "A"

# "thread": a daemon thread sends after commit; "sync": send right after commit, in the
# committing thread (tests and scripts, where nothing should run behind their back).
NOTIFY_INPROCESS = "thread"
# Without Redis the web process keeps the shop's clock (servicedesk.chores): the outbox sweep
# every SWEEP_EVERY seconds, reminders and auto-close every AUTO_CLOSE_EVERY. False: leave them
# to cron (flask sweep-outbox, remind-customers, close-unanswered).
INPROCESS_CLOCK = True
SWEEP_EVERY = 60
# Outbound webhooks (admin page "Webhooks"): seconds to connect and again to read the answer;
# the waits between tries after a network error, 5xx or 429 (then the delivery is failed).
WEBHOOK_TIMEOUT = 5
WEBHOOK_RETRY_INTERVALS = (10, 60, 300, 900, 3600)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
REMEMBER_COOKIE_SAMESITE = "Lax"
REMEMBER_COOKIE_DURATION = timedelta(days=14)
PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
# ...renewed by every page, so a session in use never idles out: however busy, it ends this many
# hours after its login (the remember-me cookie, if ticked, starts a new one; 0: no limit).
SESSION_MAX_HOURS = 16
# The waiting room's kiosk account is always remembered, this long from its login: its tablet
# and wall screen stay logged in across nights (nobody there knows the password), and it opens
# nothing but the kiosk and the display. Ending it: reset its password or deactivate it.
KIOSK_REMEMBER_DAYS = 90
SESSION_PROTECTION = "strong"
WTF_CSRF_TIME_LIMIT = None  # a reception screen stays open all shift

# The largest request body taken (bytes): an intake or a bill with its hundred lines is a few
# kilobytes; a larger body is refused (413) before it is read into memory.
MAX_CONTENT_LENGTH = 1024 * 1024

RATELIMIT_STORAGE_URI = "memory://"
# With the limits kept in Redis (production), Redis down must not take the login and the
# customers' pages with it: count in memory meanwhile, and never fail a request over a limit.
RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
RATELIMIT_SWALLOW_ERRORS = True
RATELIMIT_HEADERS_ENABLED = True

# Service types offered at intake (codes; their names are translated in the UI).
SERVICE_TYPES = ("repair", "warranty", "software", "data_recovery")
# Test phone numbers allowed even though they are not mobiles (Twilio's magic numbers).
SMS_TEST_NUMBERS = ()
