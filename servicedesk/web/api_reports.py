"""Report endpoints of the JSON API under /api/v1/reports (issue 6)."""
from flask import Blueprint

from ..extensions import csrf

bp = Blueprint("api_reports", __name__, url_prefix="/api/v1/reports")
csrf.exempt(bp)
