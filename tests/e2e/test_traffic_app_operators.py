"""ScaleAppOperator, WaitHealthyOperator and SwitchTrafficOperator run by Airflow (`dag.test()`) on the lab.

Inside Airflow the connection layer hands the work to the providers' hooks: KubernetesHook for the fake
AKS API (the lab's fake of the Kubernetes API at the HTTP boundary, in which the DR deployment is the app-dr
process), HttpHook for the health checks, AwsBaseHook for Route 53 and CloudFront (moto). The Cloudflare
layer is the lab's fake of Cloudflare's API. Outcomes are read from the services themselves.
"""

from __future__ import annotations

import os
import textwrap

from multicloud_dr.config import load_topology
from multicloud_dr.kube.site import SiteApp
from multicloud_dr.lab import seed
from multicloud_dr.lab.airflow_run import run_dag, task_results
from multicloud_dr.lab.process import port_accepts

DAG_ID = "traffic_app_operators_check"
DAG_FILE = f'''
"""A test DAG: the DR app goes from 0 to its replicas, is found healthy, and traffic goes to dr and back."""
import pendulum
from airflow.sdk import DAG

from multicloud_dr.operators.app import ScaleAppOperator, WaitHealthyOperator
from multicloud_dr.operators.traffic import SwitchTrafficOperator

with DAG(dag_id="{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
         doc_md=__doc__, tags=["test"], default_args={{"owner": "test", "retries": 0}}):
    down = ScaleAppOperator(task_id="scale_dr_down", site="dr", replicas=0)
    up = ScaleAppOperator(task_id="scale_dr_up", site="dr", direction="up")
    healthy = WaitHealthyOperator(task_id="wait_dr_healthy", site="dr", timeout=60)
    to_dr = SwitchTrafficOperator(task_id="switch_to_dr", to_site="dr")
    again = SwitchTrafficOperator(task_id="switch_to_dr_again", to_site="dr")
    back = SwitchTrafficOperator(task_id="switch_back", to_site="primary")
    down >> up >> healthy >> to_dr >> again >> back
'''


def route53_value() -> str:
    client = seed.aws_client("route53", os.environ["LAB_AWS_ENDPOINT_URL"])
    sets = client.list_resource_record_sets(HostedZoneId=os.environ["LAB_ROUTE53_ZONE_ID"])["ResourceRecordSets"]
    return next(r["ResourceRecords"][0]["Value"] for r in sets if r["Name"].rstrip(".") == seed.APP_RECORD)


def test_operators_scale_the_dr_app_wait_for_it_and_switch_traffic(airflow_db, lab, tmp_path, monkeypatch):
    (tmp_path / f"{DAG_ID}.py").write_text(textwrap.dedent(DAG_FILE))
    # dag.test() runs what its bundle (the dags folder, read by airflow.settings when first imported) holds.
    from airflow import settings

    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(tmp_path))
    try:
        dag_run = run_dag(DAG_ID, tmp_path)
        results = task_results(dag_run)
    finally:   # whatever happened, the lab's DR app runs again for the tests after this one
        with SiteApp.from_topology(load_topology(), "dr") as dr:
            dr.scale_up()
    assert str(dag_run.state) == "success", results
    down, up = results["scale_dr_down"][1], results["scale_dr_up"][1]
    assert down["replicas"] == 0 and up["replicas"] == 1 and up["rollout"][0]["ready"] == 1
    assert results["wait_dr_healthy"][1]["status_code"] == 200
    to_dr, again, back = (results[t][1] for t in ("switch_to_dr", "switch_to_dr_again", "switch_back"))
    assert to_dr["changed"] and {layer["to"] for layer in to_dr["layers"]} == {"dr"}
    assert not again["changed"]                                    # the retry-like second run wrote nothing
    assert back["changed"] and route53_value() == "app-primary.lab.localhost"
    assert port_accepts(lab.app_dr.port)                          # app-dr serves again
