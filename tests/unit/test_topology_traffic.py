"""The topology's sites, traffic and frontend sections: what the lab ships parses, and a wrong one is refused
with one line that says what to fix (drctl exits 2 on it)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from multicloud_dr.config import CloudflareLayer, CloudFrontLayer, Route53Layer, load_topology
from multicloud_dr.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())


def test_the_shipped_topology_names_both_sites_and_three_layers():
    topology = load_topology(ROOT / "include" / "topology.yaml")
    assert set(topology.sites) == {"primary", "dr"}
    assert [type(layer) for layer in topology.traffic.layers] == [Route53Layer, CloudFrontLayer, CloudflareLayer]
    assert topology.sites["dr"].app.secret_from_conn_id == "mysql_dr"
    assert topology.frontend.source.startswith("s3://")


def _load(tmp_path: Path, change) -> None:
    data = copy.deepcopy(SHIPPED)
    change(data)
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    load_topology(path)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["traffic"]["layers"][0]["targets"].pop("dr"), "names each site once, primary and dr"),
    (lambda d: d["traffic"]["layers"][0]["targets"].update(dr="app-primary.lab.localhost"), "must differ"),
    (lambda d: d["traffic"]["layers"][1].update(distribution_id="E123"), "exactly one of distribution_id and alias"),
    (lambda d: d["traffic"]["layers"][2]["pools"].update(moon="x"), "unknown: moon"),
    (lambda d: d["traffic"]["layers"].append({"provider": "akamai"}), "does not match any of the expected tags"),
    (lambda d: d["sites"].update(moon={"cloud": "aws"}), "sites are primary and dr"),
    (lambda d: d.pop("sites"), "traffic layers need a sites section"),
    (lambda d: d["sites"]["dr"]["app"].pop("kubernetes_conn_id"), "need kubernetes_conn_id"),
    (lambda d: d["sites"]["dr"]["app"].pop("secret"), "secret_from_conn_id is set but secret is not"),
    (lambda d: d["frontend"].update(source="gs://b/p"), "the frontend's source is s3://BUCKET/PREFIX"),
    (lambda d: d["frontend"].update(copies=[]), "name at least one copy"),
])
def test_a_wrong_section_is_one_line_that_says_what_to_fix(tmp_path, change, message):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, change)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_site_is_refused_with_the_sites_there_are():
    with pytest.raises(ConfigError, match="no site 'moon': sites are primary, dr"):
        load_topology(ROOT / "include" / "topology.yaml").site("moon")
