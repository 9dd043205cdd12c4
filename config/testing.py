"""Test settings, layered over default.py by tests/conftest.py."""
TESTING = True
WTF_CSRF_ENABLED = True
NOTIFY_INPROCESS = "sync"
RATELIMIT_ENABLED = False
SECRET_KEY = "test-secret-key-not-for-production"
PUBLIC_BASE_URL = "http://shop.test"
SHOP_NAME = "Test Repair Shop"
SHOP_PHONE = "021-12345678"
