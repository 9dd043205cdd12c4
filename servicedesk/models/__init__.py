"""The data model (DESIGN section 3), one module per aggregate."""
from ._types import UTCDateTime, utcnow
from .branches import Branch, Counter, TillCount
from .notifications import NOTIFICATION_STATUSES, Notification, SmsTemplate
from .people import NO_TOKEN_ROLES, ROLES, ApiToken, Customer, Device, User
from .surveys import SurveyResponse
from .tickets import (LOANER_CONDITIONS, CostLine, Loan, Loaner, RetiredLink, Ticket,
                      TicketEvent, TicketNote, TicketSignature)
from .visits import VISIT_STATUSES, Visit
from .stages import TicketStage
from .admin import AuditLog, ServiceType, Setting
from .webhooks import WEBHOOK_STATUSES, WebhookDelivery, WebhookEndpoint

__all__ = [
    "UTCDateTime", "utcnow", "Branch", "Counter", "Notification", "SmsTemplate",
    "NOTIFICATION_STATUSES", "NO_TOKEN_ROLES", "ROLES", "ApiToken", "Customer", "Device", "User",
    "SurveyResponse", "CostLine", "Loan", "Loaner", "LOANER_CONDITIONS", "RetiredLink", "Ticket",
    "TicketEvent", "TicketNote", "TicketSignature", "VISIT_STATUSES",
    "Visit", "TicketStage", "AuditLog", "ServiceType", "Setting", "TillCount",
    "WEBHOOK_STATUSES", "WebhookDelivery", "WebhookEndpoint",
]
