"""Administration: users, branches, service types, SMS templates, settings (issue 8)."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")
