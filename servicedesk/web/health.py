"""Liveness and readiness probes (issue 9)."""
from flask import Blueprint

bp = Blueprint("health", __name__)
