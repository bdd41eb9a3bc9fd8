"""Where the lab keeps PostgreSQL's data: a checkout in a private (0700) folder, run as root, must work."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from multicloud_dr.lab.settings import OUTSIDE_HOME, LabSettings


def _has_postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not _has_postgres_user(),
                                reason="the placement only differs for root with a postgres user")


@needs_root
def test_a_home_under_a_private_folder_puts_postgres_data_where_the_postgres_user_can_reach(tmp_path: Path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    settings = LabSettings(home=private / "checkout" / ".lab", root=private / "checkout")
    assert settings.postgres_home.parent == OUTSIDE_HOME
    # The same home always maps to the same place (status and down in later processes find the data).
    assert LabSettings(home=settings.home, root=settings.root).postgres_home == settings.postgres_home
    assert LabSettings(home=private / "other" / ".lab", root=private / "other").postgres_home != settings.postgres_home


@needs_root
def test_a_home_the_postgres_user_can_reach_keeps_postgres_data_in_it():
    # Not pytest's tmp_path: its base folder is private to root.
    public = Path(tempfile.mkdtemp(prefix="mcdr-lab-settings-"))
    try:
        public.chmod(0o755)
        settings = LabSettings(home=public / ".lab", root=public)
        assert settings.postgres_home == settings.home
    finally:
        shutil.rmtree(public)


def test_secrets_written_by_an_older_lab_keep_their_passwords_and_gain_the_api_tokens(tmp_path: Path):
    """A .lab/secrets.json from before the fake APIs (no kube_token, cloudflare_token) still loads: the running
    servers' passwords are kept, the tokens are made once, and the file stays private."""
    import json

    from multicloud_dr.lab.settings import LabSecrets

    path = tmp_path / "secrets.json"
    old = {"mysql_admin": "a1", "mysql_app": "a2", "mysql_repl": "a3", "pg_admin": "a4", "pg_repl": "a5"}
    path.write_text(json.dumps(old))
    path.chmod(0o644)

    loaded = LabSecrets.load_or_create(path)
    assert {name: getattr(loaded, name) for name in old} == old
    assert loaded.kube_token and loaded.cloudflare_token and loaded.kube_token != loaded.cloudflare_token
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == loaded.__dict__
    assert LabSecrets.load_or_create(path) == loaded, "the tokens must not change from one load to the next"
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"], "a temporary file was left behind"
