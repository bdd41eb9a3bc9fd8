"""Sample "pet clinic" application database for the multicloud-dr lab.

The lab protects a 3-tier web application whose MySQL/MariaDB database is described by
``include/sql/petclinic_schema.sql``. This module loads that schema through a DB-API connection
(pymysql) and fills it with a chosen volume of realistic, deterministic rows, so that backup,
replication and restore paths are exercised on data that looks like production: utf8mb4 text with
accents and emoji, JSON documents, exact DECIMAL money, binary photos, a table without a primary key
and a table whose name needs quoting.

Public API:

* :data:`SCHEMA_FILE` - path of the DDL script.
* :func:`split_sql_script` - split a mysql-client style script (with ``DELIMITER``) into statements.
* :func:`create_schema` - load the schema into the (empty) database selected on a connection.
* :func:`generate_rows` - append about N MB of rows; returns per-table inserted row counts.
* :func:`table_row_counts` - exact ``COUNT(*)`` per base table.

Deliberately free of Airflow imports: it runs from tasks, from tests and from a plain shell.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multicloud_dr.sql import quote_identifier

if TYPE_CHECKING:
    from pymysql.connections import Connection

log = logging.getLogger(__name__)

SCHEMA_FILE: Path = Path(__file__).resolve().parents[3] / "include" / "sql" / "petclinic_schema.sql"

MIB = 1024 * 1024

# Rows are committed in batches of about this many value bytes: large enough that commit (fsync)
# cost is negligible, small enough that a failure loses little and memory stays flat. pymysql
# further splits each table's executemany into statements of ~1 MB (Cursor.max_stmt_length),
# which stays below every common max_allowed_packet default (MariaDB 16 MB, MySQL 64 MB).
_BATCH_BYTES = 2 * MIB

# Column lists per table, in an order where every FK parent precedes its children; batches are
# flushed in this order inside one transaction.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "pet_types": ("id", "name"),
    "specialties": ("id", "name"),
    "vets": ("id", "first_name", "last_name", "email", "license_number", "hired_on"),
    "vet_specialties": ("vet_id", "specialty_id", "certified_on"),
    "vet schedule": ("id", "vet_id", "day_of_week", "starts_at", "ends_at", "room"),
    "owners": (
        "id",
        "first_name",
        "last_name",
        "address",
        "city",
        "postal_code",
        "country",
        "telephone",
        "email",
        "notes",
        "created_at",
    ),
    "pets": ("id", "owner_id", "type_id", "name", "birth_date", "attributes"),
    "pet_photos": ("id", "pet_id", "filename", "content_type", "taken_at", "sha256", "data"),
    "visits": ("id", "pet_id", "vet_id", "visit_date", "weight_kg", "description"),
    "invoices": (
        "id",
        "visit_id",
        "invoice_number",
        "issued_on",
        "currency",
        "amount",
        "tax",
        "total",
        "status",
        "paid_at",
    ),
    "audit_log": ("occurred_at", "table_name", "action", "row_pk", "actor", "details"),
}
TABLES: tuple[str, ...] = tuple(_COLUMNS)

# Tables whose ids the generator assigns itself (MAX(id) + 1 onwards) instead of relying on
# AUTO_INCREMENT: children need the parent ids before anything is sent, and explicit ids are immune
# to auto_increment_increment/offset settings and to non-consecutive multi-row allocation.
_ID_TABLES = (
    "pet_types",
    "specialties",
    "vets",
    "vet schedule",
    "owners",
    "pets",
    "pet_photos",
    "visits",
    "invoices",
)


def _insert_sql(table: str) -> str:
    columns = _COLUMNS[table]
    return (
        f"INSERT INTO {quote_identifier(table)} ({', '.join(quote_identifier(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )


_INSERT_SQL = {table: _insert_sql(table) for table in TABLES}


# --------------------------------------------------------------------------------------------------
# Script splitting
# --------------------------------------------------------------------------------------------------

# `DELIMITER` is a mysql-client command, recognised only as the first word of a line.
_DELIMITER_LINE = re.compile(r"[ \t]*DELIMITER(?=[ \t\r\n]|\Z)", re.IGNORECASE)
_DELIMITER_ARG = re.compile(r"[ \t]+(\S+)[ \t]*\r?(?:\n|\Z)")


def _end_of_quoted(text: str, start: int) -> int:
    """Index just past the quoted token opening at ``start`` ('...', "..." or `...`)."""
    quote = text[start]
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and quote != "`":
            i += 2
            continue
        if c == quote:
            if i + 1 < n and text[i + 1] == quote:  # doubled quote is an escaped quote
                i += 2
                continue
            return i + 1
        i += 1
    line = text.count("\n", 0, start) + 1
    raise ValueError(f"unterminated {quote} quote starting on line {line}")


def split_sql_script(text: str) -> list[str]:
    """Split a mysql-client style SQL script into executable statements.

    Follows the mysql/mariadb command-line client: statements end at the current delimiter
    (initially ``;``), a line whose first word is ``DELIMITER`` changes it, delimiters inside
    quoted strings/identifiers or comments do not count, ``-- `` and ``#`` comments are dropped
    and ``/* ... */`` comments are kept (they may be ``/*! ... */`` executable comments). Returned
    statements are stripped and carry no delimiter; empty ones are skipped. Backslash escapes are
    honoured inside quotes (the server default, i.e. no NO_BACKSLASH_ESCAPES).

    Raises ValueError on an unterminated quote or block comment, or on a ``DELIMITER`` line
    without an argument or in the middle of an unfinished statement.
    """
    statements: list[str] = []
    delimiter = ";"
    buf: list[str] = []
    i = 0
    n = len(text)
    at_line_start = True

    def emit() -> None:
        statement = "".join(buf).strip()
        buf.clear()
        if statement:
            statements.append(statement)

    while i < n:
        if at_line_start:
            at_line_start = False
            command = _DELIMITER_LINE.match(text, i)
            if command:
                arg = _DELIMITER_ARG.match(text, command.end())
                line = text.count("\n", 0, i) + 1
                if not arg:
                    raise ValueError(f"line {line}: DELIMITER needs exactly one argument")
                if "".join(buf).strip():
                    raise ValueError(f"line {line}: DELIMITER inside an unterminated statement")
                buf.clear()
                delimiter = arg.group(1)
                i = arg.end()
                at_line_start = True
                continue
        if text.startswith(delimiter, i):
            emit()
            i += len(delimiter)
            continue
        c = text[i]
        if c in "'\"`":
            end = _end_of_quoted(text, i)
            buf.append(text[i:end])
            i = end
            continue
        # MySQL only treats "--" as a comment when followed by whitespace (x--1 is arithmetic).
        if c == "#" or (c == "-" and text.startswith("--", i) and (i + 2 == n or text[i + 2] in " \t\r\n")):
            newline = text.find("\n", i)
            i = n if newline == -1 else newline
            continue
        if c == "/" and text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close == -1:
                raise ValueError(f"unterminated /* comment starting on line {text.count(chr(10), 0, i) + 1}")
            buf.append(text[i : close + 2])
            i = close + 2
            continue
        buf.append(c)
        if c == "\n":
            at_line_start = True
        i += 1
    emit()
    return statements


# --------------------------------------------------------------------------------------------------
# Schema and counts
# --------------------------------------------------------------------------------------------------


def _current_database(conn: Connection) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE(), @@character_set_client")
        database, charset = cur.fetchone()
    if not database:
        raise ValueError("no database selected on the connection; select the target database first")
    # Anything narrower than utf8mb4 on the client side silently mangles the 4-byte emoji.
    if charset != "utf8mb4":
        raise ValueError(f"connection character set is {charset!r}; utf8mb4 is required")
    return database


def _base_tables(conn: Connection) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
        return [row[0] for row in cur.fetchall()]


def create_schema(conn: Connection) -> None:
    """Create the pet clinic schema in the database selected on ``conn``.

    The database must be empty: the script is not re-runnable by design (see its header), so this
    refuses up front rather than failing half-way through with some objects already created.
    DDL commits implicitly; nothing is left pending on the connection.
    """
    database = _current_database(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()")
        (existing,) = cur.fetchone()
        if existing:
            raise RuntimeError(
                f"database {database!r} is not empty ({existing} tables/views); refusing to load"
            )
        for statement in split_sql_script(SCHEMA_FILE.read_text(encoding="utf-8")):
            # No args: pymysql leaves '%' alone (the trigger body uses DATE_FORMAT patterns).
            cur.execute(statement)
    conn.commit()


def table_row_counts(conn: Connection) -> dict[str, int]:
    """Exact ``COUNT(*)`` of every base table in the selected database (views excluded)."""
    counts: dict[str, int] = {}
    with conn.cursor() as cur:
        for table in _base_tables(conn):
            cur.execute(f"SELECT COUNT(*) FROM {quote_identifier(table)}")
            counts[table] = int(cur.fetchone()[0])
    return counts


# --------------------------------------------------------------------------------------------------
# Row generation
# --------------------------------------------------------------------------------------------------


def _pool(text: str) -> tuple[str, ...]:
    """Comma-separated literal -> tuple; keeps the long multilingual pools readable."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


_FIRST_NAMES = _pool(
    """
    James, Mary, George, Betty, Harold, Jean, Peter, Carlos, Liam, Olivia, Noah, Emma, Ava, Sophia,
    Mateo, Lucía, José, María, Zoë, Chloé, François, Renée, André, Thérèse, Søren, Åsa, Øystein,
    Björn, Jürgen, Ingrid, Łukasz, Małgorzata, Agnieszka, Siobhán, Niamh, Ólafur, Þóra, Oğuz, Çağla,
    Nuño, Hiroshi, Yuki, Aiko, Wei, Chidi, Amara, Dmitri, Αλέξανδρος, Дмитрий, 李娜, さくら, Nguyễn Văn An
    """
)
_LAST_NAMES = _pool(
    """
    Smith, Davis, Franklin, Coleman, Escobito, Black, Rodriquez, McTavish, Schroeder, García, Hernández,
    Ramírez, Nuñez, Müller, Schröder, Dubois, Lefèvre, O'Brien, D'Angelo, Ó Súilleabháin, van der Berg,
    Jørgensen, Åkesson, Þórsdóttir, Łukaszewicz, Kowalski, Novák, Dvořák, Đorđević, Şahin, Öztürk,
    Gonçalves, Rossi, Nakamura, Tanaka, Kim, Trần, Papadopoulos, Иванова, 王, Okafor
    """
)
_STREETS = _pool(
    """
    Main Street, Elm Avenue, Oak Lane, Baker Street, Rue de la Paix, Champs-Élysées, Hauptstraße,
    Königsallee, Straße des 17. Juni, Calle Mayor, Avenida de Mayo, Via Roma, Kungsgatan, Nørrebrogade,
    ulica Długa, Rua Augusta, Grafton Street, Bahnhofstrasse
    """
)
# country -> (cities, phone prefix, currency, tax rate, postal code pattern: '9' digit, 'A' letter)
_COUNTRIES: dict[str, tuple[tuple[str, ...], str, str, Decimal, str]] = {
    "US": (("Madison", "Sun Prairie", "McFarland", "Monona"), "+1", "USD", Decimal("0.055"), "99999"),
    "GB": (("London", "Bristol", "Edinburgh"), "+44", "GBP", Decimal("0.20"), "AA9 9AA"),
    "IE": (("Dublin", "Cork", "Galway"), "+353", "EUR", Decimal("0.23"), "A99 A9A9"),
    "FR": (("Paris", "Besançon", "Orléans", "Nîmes"), "+33", "EUR", Decimal("0.20"), "99999"),
    "DE": (("München", "Köln", "Düsseldorf", "Berlin"), "+49", "EUR", Decimal("0.19"), "99999"),
    "ES": (("Madrid", "A Coruña", "Cádiz", "Málaga"), "+34", "EUR", Decimal("0.21"), "99999"),
    "PL": (("Kraków", "Łódź", "Gdańsk", "Wrocław"), "+48", "PLN", Decimal("0.23"), "99-999"),
    "DK": (("København", "Århus", "Odense"), "+45", "DKK", Decimal("0.25"), "9999"),
    "SE": (("Malmö", "Göteborg", "Stockholm"), "+46", "SEK", Decimal("0.25"), "999 99"),
    "CH": (("Zürich", "Genève", "Bern"), "+41", "CHF", Decimal("0.081"), "9999"),
    "PT": (("Lisboa", "Porto", "Évora"), "+351", "EUR", Decimal("0.23"), "9999-999"),
}
_COUNTRY_CODES = tuple(_COUNTRIES)
_COUNTRY_WEIGHTS = (30, 8, 4, 10, 12, 8, 8, 4, 4, 4, 8)

_PET_TYPES = (
    "cat",
    "dog",
    "lizard",
    "snake",
    "bird",
    "hamster",
    "rabbit",
    "ferret",
    "guinea pig",
    "turtle",
)
_PET_TYPE_WEIGHTS = (34, 40, 3, 2, 6, 4, 5, 2, 3, 1)
_PET_NAMES = _pool(
    """
    Leo, Basil, Rosy, Jewel, Iggy, George, Samantha, Max, Lucky, Mulligan, Freddy, Sly, Bella, Luna,
    Chloé, Mochi, Kiki, Fluffy, Bébé, Schnitzel, Kürbis, Zazu, Peanut, Biscuit, Tofu, Nala, Simba,
    Pépite, Ñoño, Smørrebrød, Pierogi, Mr. Whiskers, Sir Barks-a-Lot, Ælfred, もも, 小白
    """
)
_COLORS = ("black", "white", "ginger", "tabby", "grey", "brown", "cream", "tricolour", "brindle", "fauve")
_TEMPERAMENTS = ("friendly", "shy", "anxious", "playful", "calm", "grumpy 😾", "bitey ⚠️", "très câlin")
_ALLERGIES = ("chicken", "beef", "grain", "pollen", "flea saliva", "penicillin", "latex")
_VACCINES = ("rabies", "distemper", "parvovirus", "FeLV", "leptospirosis", "bordetella")
_DIETS = ("dry food", "wet food", "raw (BARF)", "renal diet", "hypoallergenic", "low-fat", "grain-free")

_VISIT_REASONS = (
    "Annual check-up, all good 👍",
    "Rabies booster 💉",
    "Dental cleaning under sedation 🦷",
    "Limping on left hind leg, x-ray taken 🦴",
    "Ear infection; prescribed drops (twice a day for 10 days)",
    "Skin rash, owner says 'it started on Monday'",
    "Weight check ⚖️",
    "Vomiting since yesterday 🤢 - bland diet for 48h",
    "Post-surgery follow-up, stitches removed ✂️",
    "Microchip implanted and registered",
    "Nail trim 🐾",
    "Flea & tick treatment",
    "Eye discharge, swab taken 👁️",
    'Behaviour consult: "scratches the sofa" 😼',
    "Senior wellness panel, bloods sent to lab 🩺",
    "Spay/neuter surgery",
    "Itchy paws; suspected food allergy",
    "Coughing at night, auscultation normal",
)
_VISIT_NOTES = (
    "Owner prefers morning appointments.",
    "Très nerveux - use muzzle.",
    "Follow-up in 2 weeks.",
    "Paid in cash 💶",
    "Owner asked for a printed invoice.",
    "Nächster Termin per SMS bestätigen.",
    "Very good boy 🐶❤️",
    "Seen by the student vet; supervised.",
    "Weight trending up - discuss diet 🍗",
    "Référé au spécialiste.",
)
_OWNER_NOTES = (
    "Prefers SMS 📱",
    "Allergic to latex - no gloves in exam room",
    "VIP client ⭐",
    "Habla español",
    "Parle français",
    "Pays by bank transfer; invoices to accounting@",
    "Has 3 more cats at home 🐈🐈🐈",
    "Call before 6 pm, works nights 🌙",
)
_SPECIALTIES = (
    "radiology",
    "surgery",
    "dentistry",
    "dermatology",
    "cardiology",
    "oncology",
    "ophthalmology",
    "exotic animals",
    "behaviour & nutrition",
    "anaesthesia",
)
_ROOMS = ("Exam 1", "Exam 2", "Exam 3", "Surgery A", "Surgery B", "X-ray", "Dental")
_AUDIT_ACTORS = ("frontdesk@clinic", "billing@clinic", "webapp", "import-job")

_MIN_VETS = 4
_OWNERS_PER_VET = 40
_HISTORY_DAYS = 3 * 365
_JPEG_MAGIC = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_CENT = Decimal("0.01")


def _ascii_slug(text: str) -> str:
    """Lower-case ASCII rendering of a name for e-mail addresses ('Łukasz' -> 'lukasz')."""
    text = text.replace("Ł", "L").replace("ł", "l").replace("Ø", "O").replace("ø", "o").replace("ß", "ss")
    text = text.replace("Þ", "Th").replace("þ", "th").replace("Đ", "D").replace("đ", "d").replace("Æ", "Ae")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "", ascii_text.lower())
    return slug or "user"


def _value_bytes(row: tuple[Any, ...]) -> int:
    """Approximate wire size of a row's values (the unit of ``generate_rows``' megabytes)."""
    size = 0
    for value in row:
        if isinstance(value, str):
            size += len(value.encode("utf-8"))
        elif isinstance(value, bytes):
            size += len(value)
        elif value is None:
            size += 1
        else:
            size += 8
    return size


@dataclass
class _Batch:
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {table: [] for table in TABLES})
    nbytes: int = 0

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows[table].append(row)
        self.nbytes += _value_bytes(row)


class _ClinicFactory:
    """Produces rows for one owner "household" at a time, with ids continuing from the database."""

    def __init__(self, rng: random.Random, now: datetime, next_ids: dict[str, int], vet_ids: list[int]):
        self.rng = rng
        self.now = now
        self.next_ids = next_ids
        self.vet_ids = vet_ids
        self.pet_type_ids: dict[str, int] = {}
        self.specialty_ids: list[int] = []

    def _id(self, table: str) -> int:
        value = self.next_ids[table]
        self.next_ids[table] = value + 1
        return value

    def _past(self, max_days: int, min_days: int = 1) -> datetime:
        """A timestamp during clinic hours, on a day between max_days and min_days ago (never today)."""
        rng = self.rng
        day = self.now.date() - timedelta(days=rng.randint(min_days, max(min_days, max_days)))
        return datetime.combine(
            day, time(rng.randint(8, 18), rng.choice((0, 15, 30, 45)), rng.randint(0, 59))
        )

    def _postal_code(self, pattern: str) -> str:
        rng = self.rng
        return "".join(
            str(rng.randint(0, 9)) if ch == "9" else rng.choice("ABCDEFGHJKLMNPRSTUVWXY") if ch == "A" else ch
            for ch in pattern
        )

    def reference_data(self, batch: _Batch, pet_types: dict[str, int], specialties: dict[str, int]) -> None:
        """Add missing lookup rows; remember the ids of all of them."""
        for name in _PET_TYPES:
            if name not in pet_types:
                pet_types[name] = self._id("pet_types")
                batch.add("pet_types", (pet_types[name], name))
        for name in _SPECIALTIES:
            if name not in specialties:
                specialties[name] = self._id("specialties")
                batch.add("specialties", (specialties[name], name))
        self.pet_type_ids = {name: pet_types[name] for name in _PET_TYPES}
        self.specialty_ids = sorted(specialties.values())

    def ensure_vets(self, batch: _Batch, owners_so_far: int) -> None:
        """Keep the vet headcount proportional to the client base."""
        wanted = max(_MIN_VETS, owners_so_far // _OWNERS_PER_VET)
        while len(self.vet_ids) < wanted:
            self._vet(batch)

    def _vet(self, batch: _Batch) -> None:
        rng = self.rng
        vet_id = self._id("vets")
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        hired_on = self.now.date() - timedelta(days=rng.randint(30, 20 * 365))
        batch.add(
            "vets",
            (
                vet_id,
                first,
                last,
                f"{_ascii_slug(first)}.{_ascii_slug(last)}.{vet_id}@clinic.example",
                f"VET-{vet_id:06d}",
                hired_on,
            ),
        )
        for specialty_id in rng.sample(self.specialty_ids, rng.choice((0, 1, 1, 2, 3))):
            batch.add(
                "vet_specialties", (vet_id, specialty_id, hired_on + timedelta(days=rng.randint(0, 900)))
            )
        days = (1, 2, 3, 4, 5) if rng.random() < 0.7 else tuple(sorted(rng.sample(range(1, 8), 4)))
        for day in days:
            start = rng.choice((7, 8, 9, 12))
            room = rng.choice(_ROOMS)
            batch.add(
                "vet schedule", (self._id("vet schedule"), vet_id, day, time(start), time(start + 4), room)
            )
            if rng.random() < 0.5:  # split shift
                batch.add(
                    "vet schedule",
                    (self._id("vet schedule"), vet_id, day, time(start + 5), time(start + 9), room),
                )
        self.vet_ids.append(vet_id)

    def household(self, batch: _Batch) -> None:
        """One owner with 1-4 pets, their visits, invoices, photos and audit entries."""
        rng = self.rng
        owner_id = self._id("owners")
        country = rng.choices(_COUNTRY_CODES, _COUNTRY_WEIGHTS)[0]
        cities, phone_prefix, currency, tax_rate, postal_pattern = _COUNTRIES[country]
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        created_at = self._past(_HISTORY_DAYS, 7)
        phone = f"{phone_prefix} {rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        email = (
            None if rng.random() < 0.1 else f"{_ascii_slug(first)}.{_ascii_slug(last)}{owner_id}@example.org"
        )
        notes = rng.choice(_OWNER_NOTES) if rng.random() < 0.3 else None
        batch.add(
            "owners",
            (
                owner_id,
                first,
                last,
                f"{rng.randint(1, 250)} {rng.choice(_STREETS)}",
                rng.choice(cities),
                self._postal_code(postal_pattern),
                country,
                phone,
                email,
                notes,
                created_at,
            ),
        )
        batch.add(
            "audit_log",
            (
                created_at,
                "owners",
                "INSERT",
                owner_id,
                rng.choice(_AUDIT_ACTORS),
                json.dumps({"source": rng.choice(("web", "phone", "walk-in"))}),
            ),
        )
        client_days = (self.now - created_at).days
        for _ in range(rng.choices((1, 2, 3, 4), (55, 28, 12, 5))[0]):
            self._pet(batch, owner_id, created_at, client_days, currency, tax_rate)

    def _pet(
        self,
        batch: _Batch,
        owner_id: int,
        client_since: datetime,
        client_days: int,
        currency: str,
        tax_rate: Decimal,
    ) -> None:
        rng = self.rng
        pet_id = self._id("pets")
        pet_type = rng.choices(_PET_TYPES, _PET_TYPE_WEIGHTS)[0]
        birth_date = client_since.date() - timedelta(days=rng.randint(60, 15 * 365))
        base_weight = {"dog": 22.0, "cat": 4.5, "rabbit": 2.0, "turtle": 1.2}.get(pet_type, 0.4)
        weight = round(base_weight * rng.uniform(0.5, 1.6), 2)
        attributes: dict[str, Any] = {
            "color": rng.choice(_COLORS),
            "weight_kg": weight,
            "neutered": rng.random() < 0.6,
            "microchip": f"985{rng.randint(10**11, 10**12 - 1)}" if rng.random() < 0.7 else None,
            "temperament": rng.choice(_TEMPERAMENTS),
            "diet": rng.choice(_DIETS),
            "allergies": rng.sample(_ALLERGIES, rng.choice((0, 0, 0, 1, 2))),
            "vaccinations": [
                {"name": name, "date": (self.now.date() - timedelta(days=rng.randint(0, 700))).isoformat()}
                for name in rng.sample(_VACCINES, rng.randint(0, 3))
            ],
        }
        batch.add(
            "pets",
            (
                pet_id,
                owner_id,
                self.pet_type_ids[pet_type],
                rng.choice(_PET_NAMES),
                birth_date,
                json.dumps(attributes, ensure_ascii=False),
            ),
        )
        if rng.random() < 0.3:
            for n in range(rng.randint(1, 2)):
                self._photo(batch, pet_id, n, client_days)
        for _ in range(rng.choices((1, 2, 3, 4, 5, 6, 8), (20, 22, 18, 14, 10, 9, 7))[0]):
            self._visit(batch, pet_id, weight, client_days, currency, tax_rate)

    def _photo(self, batch: _Batch, pet_id: int, n: int, client_days: int) -> None:
        rng = self.rng
        size = rng.randint(2048, 6144)
        if rng.random() < 0.8:
            content_type, data = "image/jpeg", _JPEG_MAGIC + rng.randbytes(size)
            filename = f"pet_{pet_id}_{n}.jpg"
        else:
            content_type, data = "image/png", _PNG_MAGIC + rng.randbytes(size)
            filename = f"pet_{pet_id}_{n}.png"
        batch.add(
            "pet_photos",
            (
                self._id("pet_photos"),
                pet_id,
                filename,
                content_type,
                self._past(client_days),
                hashlib.sha256(data).hexdigest(),
                data,
            ),
        )

    def _visit(
        self, batch: _Batch, pet_id: int, weight: float, client_days: int, currency: str, tax_rate: Decimal
    ) -> None:
        rng = self.rng
        visit_id = self._id("visits")
        visit_date = self._past(client_days)
        description = rng.choice(_VISIT_REASONS)
        if rng.random() < 0.4:
            description += " " + rng.choice(_VISIT_NOTES)
        visit_weight = (
            Decimal(str(round(weight * rng.uniform(0.93, 1.07), 2))) if rng.random() < 0.8 else None
        )
        batch.add(
            "visits", (visit_id, pet_id, rng.choice(self.vet_ids), visit_date, visit_weight, description)
        )
        # visits_after_insert adds the visit's own audit_log row server-side.
        if rng.random() < 0.15:
            return  # no charge (follow-ups, goodwill)
        amount = Decimal(rng.randint(1500, 60000)).scaleb(-2)
        tax = (amount * tax_rate).quantize(_CENT)
        age_days = (self.now - visit_date).days
        roll = rng.random()
        if (age_days > 30 and roll < 0.95) or (age_days <= 30 and roll < 0.6):
            status, paid_at = "paid", visit_date + timedelta(days=rng.randint(0, min(age_days, 30)), hours=1)
        elif roll < 0.98:
            status, paid_at = "open", None
        else:
            status, paid_at = "void", None
        invoice_id = self._id("invoices")
        batch.add(
            "invoices",
            (
                invoice_id,
                visit_id,
                f"INV-{visit_id:08d}",
                visit_date.date(),
                currency,
                amount,
                tax,
                amount + tax,
                status,
                paid_at,
            ),
        )
        if paid_at is not None:
            batch.add(
                "audit_log",
                (
                    paid_at,
                    "invoices",
                    "UPDATE",
                    invoice_id,
                    "billing@clinic",
                    json.dumps(
                        {"status": ["open", "paid"], "total": str(amount + tax), "currency": currency}
                    ),
                ),
            )


def _load_state(conn: Connection) -> tuple[dict[str, int], list[int], dict[str, int], dict[str, int]]:
    next_ids: dict[str, int] = {}
    with conn.cursor() as cur:
        for table in _ID_TABLES:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quote_identifier(table)}")
            next_ids[table] = int(cur.fetchone()[0]) + 1
        cur.execute("SELECT id FROM vets ORDER BY id")
        vet_ids = [int(row[0]) for row in cur.fetchall()]
        cur.execute("SELECT name, id FROM pet_types")
        pet_types = {name: int(id_) for name, id_ in cur.fetchall()}
        cur.execute("SELECT name, id FROM specialties")
        specialties = {name: int(id_) for name, id_ in cur.fetchall()}
    return next_ids, vet_ids, pet_types, specialties


def _flush(conn: Connection, batch: _Batch, counts: dict[str, int]) -> None:
    try:
        with conn.cursor() as cur:
            for table in TABLES:
                rows = batch.rows[table]
                if rows:
                    cur.executemany(_INSERT_SQL[table], rows)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    for table in TABLES:
        counts[table] += len(batch.rows[table])
    # One trigger-written audit row per visit.
    counts["audit_log"] += len(batch.rows["visits"])


def generate_rows(
    conn: Connection, megabytes: float, seed: int = 42, *, today: date | None = None
) -> dict[str, int]:
    """Append about ``megabytes`` MiB of realistic rows to the pet clinic schema on ``conn``.

    Size is measured as the bytes of the values sent (UTF-8 text, BLOB bytes, 8 per number/date),
    which is what dominates the dump/backup size; on-disk size is larger (indexes, page overhead).
    The target is met with an overshoot of at most one household (a few KB); the audit_log rows
    written by the ``visits_after_insert`` trigger are not part of the estimate.

    Output is a pure function of ``seed``, ``today`` (default: the current local date; all dates
    are within the 3 years before it) and the ids/lookup rows already present. Ids continue from
    each table's MAX(id), so repeated calls append. Rows are committed every ~2 MiB; on error the
    current batch is rolled back and earlier batches stay committed.

    Returns the number of rows inserted per table, including one trigger-written ``audit_log``
    row per visit.
    """
    if megabytes <= 0:
        raise ValueError(f"megabytes must be positive, got {megabytes}")
    _current_database(conn)
    target = int(megabytes * MIB)
    rng = random.Random(seed)
    now = datetime.combine(today or date.today(), time(0))
    next_ids, vet_ids, pet_types, specialties = _load_state(conn)
    factory = _ClinicFactory(rng, now, next_ids, vet_ids)
    counts = dict.fromkeys(TABLES, 0)
    sent = 0
    batch = _Batch()
    factory.reference_data(batch, pet_types, specialties)
    while sent + batch.nbytes < target:
        factory.ensure_vets(batch, next_ids["owners"])
        factory.household(batch)
        if batch.nbytes >= _BATCH_BYTES:
            sent += batch.nbytes
            _flush(conn, batch, counts)
            batch = _Batch()
    sent += batch.nbytes
    _flush(conn, batch, counts)
    log.info("inserted %d rows, %.1f MiB of values", sum(counts.values()), sent / MIB)
    return counts


def create_database(conn: Connection, name: str, megabytes: float, seed: int = 42) -> dict[str, int]:
    """(Re)create database `name` with the schema and about `megabytes` MB of rows; returns row counts.
    Drops an existing database of that name first: for the lab's sample, benchmarks and tests only."""
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)}")
        cur.execute(f"CREATE DATABASE {quote_identifier(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.select_db(name)
    create_schema(conn)
    return generate_rows(conn, megabytes, seed=seed)
