"""Unit tests for the lab's pet clinic schema file and its script splitter (no database needed)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multicloud_dr.lab.sample_data import SCHEMA_FILE, TABLES, split_sql_script

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------------------------------
# split_sql_script
# --------------------------------------------------------------------------------------------------


def test_splits_on_semicolons_and_strips() -> None:
    assert split_sql_script("SELECT 1;\n  SELECT 2 ;\nSELECT 3") == ["SELECT 1", "SELECT 2", "SELECT 3"]


def test_skips_empty_statements() -> None:
    assert split_sql_script(";;\n ; SELECT 1;;\n\n") == ["SELECT 1"]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO t VALUES ('a;b')",
        'INSERT INTO t VALUES ("a;b")',
        "SELECT `odd;name` FROM t",
        "INSERT INTO t VALUES ('it''s; fine')",
        r"INSERT INTO t VALUES ('it\'s; fine')",
        r"INSERT INTO t VALUES ('backslash at end\\', ';')",
        "SELECT `back``tick;` FROM t",
        "INSERT INTO t VALUES ('-- not a comment; # neither')",
        "SELECT '$$' AS dollars",
    ],
)
def test_delimiters_inside_quotes_are_not_split(statement: str) -> None:
    assert split_sql_script(f"{statement};\nSELECT 2;") == [statement, "SELECT 2"]


def test_line_comments_are_dropped() -> None:
    script = "-- header; with a semicolon\nSELECT 1; -- trailing; comment\n# hash; comment\nSELECT 2;\n--\n"
    assert split_sql_script(script) == ["SELECT 1", "SELECT 2"]


def test_double_dash_without_space_is_not_a_comment() -> None:
    assert split_sql_script("SELECT 5--1;\nSELECT 2;") == ["SELECT 5--1", "SELECT 2"]


def test_block_comments_are_kept_and_protect_delimiters() -> None:
    script = "/* a; b */ SELECT 1;\n/*!40101 SET NAMES utf8mb4 */;\n"
    assert split_sql_script(script) == ["/* a; b */ SELECT 1", "/*!40101 SET NAMES utf8mb4 */"]


def test_delimiter_command_switches_and_restores() -> None:
    script = """
CREATE TABLE t (id INT);
DELIMITER $$
CREATE PROCEDURE p()
BEGIN
    INSERT INTO t VALUES (1);
    SELECT ';' , '$$';
END$$
CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.id = NEW.id + 1$$
delimiter ;
SELECT 1;
DELIMITER //
CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 1//
DELIMITER ;
"""
    statements = split_sql_script(script)
    assert statements == [
        "CREATE TABLE t (id INT)",
        "CREATE PROCEDURE p()\nBEGIN\n    INSERT INTO t VALUES (1);\n    SELECT ';' , '$$';\nEND",
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.id = NEW.id + 1",
        "SELECT 1",
        "CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 1",
    ]
    assert not any("DELIMITER" in s.upper() for s in statements)


def test_delimiter_word_only_counts_at_line_start() -> None:
    assert split_sql_script("SELECT 'x' AS delimiter;\nSELECT delimiter FROM t;") == [
        "SELECT 'x' AS delimiter",
        "SELECT delimiter FROM t",
    ]


def test_crlf_line_endings() -> None:
    script = "SELECT 1;\r\nDELIMITER $$\r\nSELECT 2; SELECT 3$$\r\nDELIMITER ;\r\nSELECT 4;\r\n"
    assert split_sql_script(script) == ["SELECT 1", "SELECT 2; SELECT 3", "SELECT 4"]


def test_statement_without_final_delimiter_is_kept() -> None:
    assert split_sql_script("SELECT 1;\nSELECT 2 -- no delimiter") == ["SELECT 1", "SELECT 2"]


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("SELECT 'unterminated;", "unterminated ' quote"),
        ("SELECT `x;", "unterminated ` quote"),
        ("SELECT 1 /* open;", r"unterminated /\* comment"),
        ("DELIMITER\nSELECT 1;", "DELIMITER needs exactly one argument"),
        ("DELIMITER $$ extra\nSELECT 1$$", "DELIMITER needs exactly one argument"),
        ("SELECT 1\nDELIMITER $$\n", "DELIMITER inside an unterminated statement"),
    ],
)
def test_malformed_scripts_are_rejected(script: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_sql_script(script)


_fragment = st.one_of(
    st.from_regex(r"[A-Za-z0-9_ (),=*+]{1,12}", fullmatch=True),
    st.text(alphabet=st.characters(blacklist_characters="'\\\x00"), max_size=8).map(lambda s: f"'{s}'"),
    st.text(alphabet=st.characters(blacklist_characters='"\\\x00'), max_size=8).map(lambda s: f'"{s}"'),
    st.text(alphabet=st.characters(blacklist_characters="`\x00"), min_size=1, max_size=8).map(
        lambda s: f"`{s}`"
    ),
)
_statement = st.lists(_fragment, min_size=1, max_size=6).map(lambda parts: "SELECT " + " ".join(parts))


@given(st.lists(_statement, max_size=6), st.sampled_from([";", "$$", "//"]))
def test_round_trip_of_generated_statements(statements: list[str], delimiter: str) -> None:
    body = "".join(f"{s}{delimiter}\n" for s in statements)
    script = body if delimiter == ";" else f"DELIMITER {delimiter}\n{body}DELIMITER ;\n"
    assert split_sql_script(script) == [s.strip() for s in statements]


# --------------------------------------------------------------------------------------------------
# The schema file
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_statements() -> list[str]:
    return split_sql_script(SCHEMA_FILE.read_text(encoding="utf-8"))


def _created(statements: list[str], kind: str) -> list[str]:
    pattern = re.compile(rf"CREATE\s+(?:SQL\s+SECURITY\s+\w+\s+)?{kind}\s+(`[^`]+`|\w+)", re.IGNORECASE)
    names = []
    for statement in statements:
        match = pattern.match(statement)
        if match:
            names.append(match.group(1).strip("`"))
    return names


EXPECTED_TABLES = {
    "owners",
    "pet_types",
    "pets",
    "vets",
    "specialties",
    "vet_specialties",
    "visits",
    "invoices",
    "pet_photos",
    "audit_log",
    "vet schedule",
}


def test_schema_file_location() -> None:
    assert SCHEMA_FILE.is_file()
    assert SCHEMA_FILE.parts[-3:] == ("include", "sql", "petclinic_schema.sql")


def test_schema_creates_expected_objects(schema_statements: list[str]) -> None:
    tables = _created(schema_statements, "TABLE")
    assert len(tables) == len(EXPECTED_TABLES) == 11
    assert set(tables) == EXPECTED_TABLES
    assert _created(schema_statements, "VIEW") == ["v_pet_visits"]
    assert _created(schema_statements, "TRIGGER") == ["visits_after_insert"]
    assert _created(schema_statements, "PROCEDURE") == ["add_visit"]
    assert _created(schema_statements, "FUNCTION") == ["pet_age_years"]
    assert _created(schema_statements, "EVENT") == ["purge_old_audit"]
    # Nothing else: every statement is one of the CREATEs above.
    assert len(schema_statements) == 11 + 5


def test_generator_knows_every_table(schema_statements: list[str]) -> None:
    assert set(TABLES) == set(_created(schema_statements, "TABLE"))


def test_schema_does_not_choose_the_database(schema_statements: list[str]) -> None:
    for statement in schema_statements:
        assert not re.match(r"(CREATE\s+(DATABASE|SCHEMA)|USE)\b", statement, re.IGNORECASE), statement
        assert "DELIMITER" not in statement.upper()


def test_every_table_is_innodb_utf8mb4(schema_statements: list[str]) -> None:
    for statement in schema_statements:
        if re.match(r"CREATE\s+TABLE", statement, re.IGNORECASE):
            assert "ENGINE=InnoDB" in statement
            assert "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci" in statement


def _table_ddl(statements: list[str], name: str) -> str:
    quoted = re.escape(f"`{name}`") if " " in name else re.escape(name)
    (ddl,) = [s for s in statements if re.match(rf"CREATE\s+TABLE\s+{quoted}\s*\(", s)]
    return ddl


def test_audit_log_has_no_primary_key(schema_statements: list[str]) -> None:
    ddl = _table_ddl(schema_statements, "audit_log")
    assert "PRIMARY KEY" not in ddl.upper()
    assert "UNIQUE" not in ddl.upper()
    # ... and every other table has one.
    for table in EXPECTED_TABLES - {"audit_log"}:
        assert "PRIMARY KEY" in _table_ddl(schema_statements, table), table


def test_special_column_types(schema_statements: list[str]) -> None:
    assert re.search(r"\battributes\s+JSON\b", _table_ddl(schema_statements, "pets"))
    assert re.search(r"\bdata\s+MEDIUMBLOB\b", _table_ddl(schema_statements, "pet_photos"))
    assert len(re.findall(r"DECIMAL\(10,2\)", _table_ddl(schema_statements, "invoices"))) == 3
    assert "FOREIGN KEY" in _table_ddl(schema_statements, "vet schedule")


def test_foreign_keys_reference_created_tables(schema_statements: list[str]) -> None:
    referenced = set()
    for statement in schema_statements:
        referenced.update(re.findall(r"REFERENCES\s+(\w+)\s*\(", statement))
    assert referenced == {"owners", "pet_types", "pets", "vets", "specialties", "visits"}


def test_stored_programs_keep_their_bodies(schema_statements: list[str]) -> None:
    (trigger,) = [s for s in schema_statements if "CREATE TRIGGER" in s]
    assert "AFTER INSERT ON visits" in trigger
    assert "INSERT INTO audit_log" in trigger
    assert trigger.rstrip().endswith("END")
    (procedure,) = [s for s in schema_statements if "CREATE PROCEDURE" in s]
    assert procedure.count(";") >= 3  # body statements stayed inside the one CREATE
    (event,) = [s for s in schema_statements if "CREATE EVENT" in s]
    assert re.search(r"ON SCHEDULE EVERY 1 DAY", event)
    assert re.search(r"^DISABLE$", event, re.MULTILINE)
