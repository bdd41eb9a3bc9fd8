"""F26 (hostile identifiers): a database name is never read as an option of the dump tool."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from multicloud_dr.backup.layout import validate_database_name
from multicloud_dr.backup.source import Preflight, dump_argv
from multicloud_dr.config import DatabaseConfig
from multicloud_dr.exceptions import ConfigError


@pytest.mark.parametrize("name", ["-x", "-r", "--result-file", "-rtmp"])
def test_a_database_name_starting_with_a_dash_is_refused_with_what_to_do(name):
    with pytest.raises(ConfigError, match=r"starts with '-'.*rename the database"):
        validate_database_name(name)


@pytest.mark.parametrize("name", ["petclinic", "a-b", "x-", "_x", "$x", "9-lives"])
def test_other_supported_database_names_are_kept(name):
    assert validate_database_name(name) == name


def test_the_topology_refuses_a_database_name_starting_with_a_dash():
    with pytest.raises(ValidationError, match="starts with '-'"):
        DatabaseConfig(name="-r", engine="mysql", primary_conn_id="mysql_primary")
    assert DatabaseConfig(name="pet-clinic", engine="mysql", primary_conn_id="mysql_primary").name == "pet-clinic"


@pytest.mark.parametrize("version_line", ["mysqldump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu",
                                          "mysqldump  Ver 8.0.40 for Linux on x86_64 (MySQL Community Server)"])
@pytest.mark.parametrize("log_bin", [True, False])
def test_dump_argv_ends_the_options_before_the_database_name(version_line, log_bin, tmp_path):
    pre = Preflight(server="127.0.0.1:3306", version="10.11", flavor="mariadb", log_bin=log_bin, gtid=None,
                    tables=[], non_innodb=[], estimated_bytes=0)
    argv = dump_argv("/usr/bin/mysqldump", version_line, tmp_path / "client.cnf", "-rx", pre)
    assert argv[1] == f"--defaults-file={tmp_path / 'client.cnf'}"
    assert argv[-2:] == ["--", "-rx"]
    assert argv.count("--") == 1 and argv.count("-rx") == 1


def test_the_restore_re_read_and_the_backup_dump_share_one_command_shape(tmp_path):
    """The restore re-reads tables with the dump command the backup uses (its rows' CRCs must come out the
    same): the options file first, the backup's options that decide how rows are written, `--` before every
    name, table names included."""
    from multicloud_dr.backup.source import dump_command

    pre = Preflight(server="127.0.0.1:3306", version="10.11", flavor="mariadb", log_bin=True, gtid=None,
                    tables=[], non_innodb=[], estimated_bytes=0)
    backup = dump_argv("/usr/bin/mysqldump", "mysqldump  Ver 10.19 Distrib 10.11.19-MariaDB", tmp_path / "c.cnf",
                       "db", pre)
    reread = dump_command("/usr/bin/mysqldump", tmp_path / "c.cnf", "db", ["-r/x", "--result-file=/y"],
                          options=["--no-create-info"])
    assert reread[1] == backup[1] == f"--defaults-file={tmp_path / 'c.cnf'}"
    assert reread[-4:] == ["--", "db", "-r/x", "--result-file=/y"] and reread.count("--") == 1
    rows = {"--single-transaction", "--quick", "--hex-blob", "--default-character-set=utf8mb4",
            "--max-allowed-packet=1G"}
    assert rows <= set(backup[:backup.index("--")]) and rows <= set(reread[:reread.index("--")])
