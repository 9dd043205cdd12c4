"""WTForms pieces shared by the staff forms."""
from flask_babel import lazy_gettext as _l
from wtforms import validators
from wtforms.validators import ValidationError

from ..i18n import localize_digits


class DataRequired(validators.DataRequired):
    """WTForms' DataRequired with the words every other form of the app uses for an empty
    field (WTForms' own Persian catalogue words it differently)."""

    def __init__(self, message=None):
        super().__init__(message or _l("This field is required."))


class Length(validators.Length):
    """WTForms' Length, its message in the page's digits ("بین ۸ تا ۲۵۶"): WTForms puts the
    numbers into its translated message itself, in Latin digits. Only this message is touched:
    an error that quotes what the user typed (a user name "tech2") keeps it as typed."""

    def __call__(self, form, field):
        try:
            super().__call__(form, field)
        except ValidationError as exc:
            raise ValidationError(localize_digits(str(exc))) from None
