"""Known brands in one spelling on the devices and stage rows already stored

Revision ID: 0008
Revises: 0007

Intake now stores a known brand in one spelling however it was typed ("samsung ", «سامسونگ»):
the rows written before keep theirs until this runs, and the reports' brand filter and the
warranty check (same brand and model) would not find them. Data only; nothing to undo.
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Frozen with this revision (migrations do not import application code that changes later):
# servicedesk.devices.BRANDS and its folding as they were.
BRANDS = {
    "Samsung": ("سامسونگ", "سامسونک"), "Apple": ("اپل",), "Xiaomi": ("شیائومی", "شیاومی"),
    "Huawei": ("هواوی", "هوآوی"), "Honor": ("آنر", "هانر"), "Nokia": ("نوکیا",),
    "Motorola": ("موتورولا",), "Sony": ("سونی",), "LG": ("ال جی", "الجی"),
    "OnePlus": ("وان پلاس", "One Plus"), "Oppo": ("اوپو",), "Vivo": ("ویوو",),
    "Realme": ("ریلمی",), "Tecno": ("تکنو",), "Infinix": ("اینفینیکس",), "Google": ("گوگل",),
    "Asus": ("ایسوس",), "Lenovo": ("لنوو",), "HTC": ("اچ تی سی",), "GLX": ("جی ال ایکس",),
}
FOLD = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "\u200c": " ", "\u200d": None,
                      "\u200e": None, "\u200f": None, "\u202a": None, "\u202b": None,
                      "\u202c": None, "\u2066": None, "\u2067": None, "\u2069": None})


def key(text):
    return " ".join(text.translate(FOLD).split()).casefold()


BY_NAME = {key(name): brand for brand, others in BRANDS.items() for name in (brand, *others)}


def brand_name(typed):
    tidy = " ".join(typed.split())
    return BY_NAME.get(key(tidy), tidy)


def upgrade():
    conn = op.get_bind()
    for table in ("devices", "ticket_stages"):
        typed = conn.execute(sa.text(
            f"SELECT DISTINCT brand FROM {table} WHERE brand IS NOT NULL")).scalars().all()
        for old in typed:
            new = brand_name(old)
            if new != old:
                conn.execute(sa.text(f"UPDATE {table} SET brand = :new WHERE brand = :old"),
                             {"new": new, "old": old})


def downgrade():
    pass  # the spellings typed are not kept; the one spelling reads the same
