"""Technician workbench: the worklist ("cartable") and the estimate editor (issue 5)."""
from flask import Blueprint

bp = Blueprint("workbench", __name__, url_prefix="/workbench")
