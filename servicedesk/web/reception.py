"""Reception desk: kiosk, queue, wall display, intake, slips, delivery desk (issue 4)."""
from flask import Blueprint

bp = Blueprint("reception", __name__)
