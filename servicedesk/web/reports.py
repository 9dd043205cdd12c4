"""Manager's dashboard and reports (issue 6)."""
from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/reports")
