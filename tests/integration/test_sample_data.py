"""Integration tests: load the pet clinic schema and generated rows into a real MariaDB/MySQL.

Needs the ``mysql_primary_admin`` fixture (conftest): pymysql.connect kwargs (host, port, user, password,
ssl) of an account allowed to create/drop databases and stored programs. Every test works in its own scratch
database with a unique name, dropped on teardown.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pymysql
import pytest

from multicloud_dr.lab.sample_data import TABLES, create_schema, generate_rows, table_row_counts

pytestmark = pytest.mark.integration

TODAY = date(2026, 1, 15)


@pytest.fixture
def new_database(mysql_primary_admin: dict[str, Any]) -> Iterator[Callable[[], pymysql.Connection]]:
    """Factory: each call creates an empty utf8mb4 database and returns a connection selecting it."""
    params: dict[str, Any] = {**mysql_primary_admin, "charset": "utf8mb4"}
    created: list[str] = []
    connections: list[pymysql.Connection] = []
    admin = pymysql.connect(**params, autocommit=True)

    def make() -> pymysql.Connection:
        name = f"sd_test_{uuid.uuid4().hex[:12]}"
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        created.append(name)
        conn = pymysql.connect(**params, database=name)
        connections.append(conn)
        return conn

    try:
        yield make
    finally:
        for conn in connections:
            conn.close()
        with admin.cursor() as cur:
            for name in created:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def _scalar(conn: pymysql.Connection, sql: str, args: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def _column(conn: pymysql.Connection, sql: str, args: Any = None) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return [row[0] for row in cur.fetchall()]


def test_schema_and_two_megabytes_of_rows(new_database: Callable[[], pymysql.Connection]) -> None:
    conn = new_database()
    create_schema(conn)
    inserted = generate_rows(conn, 2, seed=42, today=TODAY)

    counts = table_row_counts(conn)
    assert set(counts) == set(TABLES)
    assert counts == inserted
    assert all(n > 0 for n in counts.values()), counts

    # JSON column: valid everywhere, and an object with the expected keys.
    assert _scalar(conn, "SELECT COUNT(*) FROM pets WHERE JSON_VALID(attributes) = 0") == 0
    for raw in _column(conn, "SELECT attributes FROM pets ORDER BY id LIMIT 50"):
        attributes = json.loads(raw)
        assert {"color", "weight_kg", "vaccinations"} <= set(attributes)

    # Generated text really contains 4-byte utf8mb4 characters (emoji), not '?' replacements.
    descriptions = _column(conn, "SELECT description FROM visits")
    assert any(ord(ch) > 0xFFFF for text in descriptions for ch in text)

    # Binary photos round-trip byte-exact (sha256 computed client-side before sending). The column is
    # ascii_bin, SHA2() returns the connection's collation: convert before comparing.
    mismatched = _scalar(
        conn,
        "SELECT COUNT(*) FROM pet_photos "
        "WHERE CONVERT(SHA2(data, 256) USING ascii) <> sha256 OR LENGTH(data) < 2048",
    )
    assert mismatched == 0
    assert _scalar(conn, "SELECT COUNT(*) FROM invoices WHERE total <> amount + tax") == 0
    assert _scalar(conn, "SELECT COUNT(*) FROM v_pet_visits") == counts["visits"]

    schema = _scalar(conn, "SELECT DATABASE()")
    assert _column(
        conn, "SELECT table_name FROM information_schema.views WHERE table_schema = %s", schema
    ) == ["v_pet_visits"]
    assert _column(
        conn, "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = %s", schema
    ) == ["visits_after_insert"]
    with conn.cursor() as cur:
        cur.execute(
            "SELECT routine_name, routine_type FROM information_schema.routines "
            "WHERE routine_schema = %s ORDER BY routine_name",
            schema,
        )
        assert cur.fetchall() == (("add_visit", "PROCEDURE"), ("pet_age_years", "FUNCTION"))
        cur.execute(
            "SELECT event_name, status, interval_value, interval_field "
            "FROM information_schema.events WHERE event_schema = %s",
            schema,
        )
        assert cur.fetchall() == (("purge_old_audit", "DISABLED", "1", "DAY"),)


def test_stored_programs_work(new_database: Callable[[], pymysql.Connection]) -> None:
    conn = new_database()
    create_schema(conn)
    generate_rows(conn, 0.2, today=TODAY)
    pet_id = _scalar(conn, "SELECT MIN(id) FROM pets")
    vet_id = _scalar(conn, "SELECT MIN(id) FROM vets")
    audit_before = _scalar(conn, "SELECT COUNT(*) FROM audit_log")

    with conn.cursor() as cur:
        cur.execute(
            "CALL add_visit(%s, %s, '2025-12-24 09:30:00', %s, 99.90, @visit_id)",
            (pet_id, vet_id, "Emergency: ate chocolate \N{DOG FACE}\N{CHOCOLATE BAR}"),
        )
        cur.execute("SELECT @visit_id")
        (visit_id,) = cur.fetchone()
    conn.commit()

    with conn.cursor() as cur:
        cur.execute("SELECT invoice_number, amount, tax, total FROM invoices WHERE visit_id = %s", visit_id)
        assert cur.fetchone() == (
            f"INV-{visit_id:08d}",
            Decimal("99.90"),
            Decimal("19.98"),
            Decimal("119.88"),
        )
    # The trigger wrote the visit's audit row.
    assert _scalar(conn, "SELECT COUNT(*) FROM audit_log") == audit_before + 1
    details = _scalar(
        conn, "SELECT details FROM audit_log WHERE table_name = 'visits' AND row_pk = %s", visit_id
    )
    assert json.loads(details)["pet_id"] == pet_id

    assert _scalar(conn, "SELECT pet_age_years(%s)", pet_id) > 0
    assert _scalar(conn, "SELECT pet_age_years(0)") is None


def test_utf8mb4_round_trip(new_database: Callable[[], pymysql.Connection]) -> None:
    conn = new_database()
    create_schema(conn)
    generate_rows(conn, 0.1, today=TODAY)
    notes = "Zoë & Łukasz Þórsdóttir: \N{PAW PRINTS}\N{CAT FACE WITH WRY SMILE} 李娜 'quoted'; done"
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO owners (first_name, last_name, address, city, postal_code, country, telephone, "
            "notes) VALUES ('Zoë', 'Þórsdóttir', '1 Nørrebrogade', 'København', '2200', 'DK', '+45 1', %s)",
            notes,
        )
        owner_id = cur.lastrowid
    conn.commit()
    # Compare in Python and by bytes: utf8mb4_unicode_ci treats all emoji as equal to each other.
    assert _scalar(conn, "SELECT notes FROM owners WHERE id = %s", owner_id) == notes
    stored_hex = _scalar(conn, "SELECT HEX(notes) FROM owners WHERE id = %s", owner_id)
    assert stored_hex == notes.encode().hex().upper()


def test_generate_rows_appends_without_key_collisions(new_database: Callable[[], pymysql.Connection]) -> None:
    conn = new_database()
    create_schema(conn)
    first = generate_rows(conn, 0.3, seed=1, today=TODAY)
    second = generate_rows(conn, 0.3, seed=1, today=TODAY)
    # Lookup tables are only filled once; everything else grows by the second call's counts.
    assert second["pet_types"] == second["specialties"] == 0
    assert second["owners"] > 0
    assert table_row_counts(conn) == {table: first[table] + second[table] for table in TABLES}


def test_create_schema_refuses_non_empty_database(new_database: Callable[[], pymysql.Connection]) -> None:
    conn = new_database()
    create_schema(conn)
    with pytest.raises(RuntimeError, match="not empty"):
        create_schema(conn)


def test_generation_is_deterministic(new_database: Callable[[], pymysql.Connection]) -> None:
    checksums = []
    for conn in (new_database(), new_database()):
        create_schema(conn)
        generate_rows(conn, 0.5, seed=7, today=TODAY)
        # audit_log is excluded: its trigger-written rows carry the server's NOW(6).
        tables = ", ".join(f"`{t}`" for t in TABLES if t != "audit_log")
        with conn.cursor() as cur:
            cur.execute(f"CHECKSUM TABLE {tables}")
            checksums.append([(name.split(".", 1)[1], value) for name, value in cur.fetchall()])
    assert checksums[0] == checksums[1]
