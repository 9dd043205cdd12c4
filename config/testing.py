"""Test settings, layered over default.py by tests/conftest.py."""
TESTING = True
WTF_CSRF_ENABLED = True
NOTIFY_INPROCESS = "sync"
RATELIMIT_ENABLED = False
SECRET_KEY = "test-secret-key-not-for-production"
PUBLIC_BASE_URL = "http://shop.test"
SHOP_NAME = "Test Repair Shop"
SHOP_PHONE = "021-12345678"
# Still argon2id, but cheap: the suite creates and logs in hundreds of users.
ARGON2_PARAMS = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
SMS_TEST_NUMBERS = ("+15005550006", "+15005550001", "+15005550004")
