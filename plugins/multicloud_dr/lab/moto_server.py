"""The lab's moto server, with one correction to its Route 53 change batches.

Route 53 validates a change batch as a whole: DELETE the record as it is and CREATE it with a new value, in
one batch, is AWS's documented way to change a record atomically (and what the traffic layer does). moto
checks each CREATE against its journal of earlier changes before it applies the batch's DELETE, so a CREATE
of a value the record held before (switching back to a site) is refused as "already exists". `patch()`
hands moto such a CREATE as an UPSERT, after the DELETE of the same record in the same batch: the outcome
AWS gives. Everything else is moto as released.

Run as `python -m multicloud_dr.lab.moto_server -H 127.0.0.1 -p PORT` (moto.server's own arguments).
"""

from __future__ import annotations

import sys
from typing import Any


def _key(change: dict[str, Any]) -> tuple[str, str, str | None]:
    rrset = change["ResourceRecordSet"]
    return rrset["Name"].strip(".").lower(), rrset["Type"], rrset.get("SetIdentifier")


def patch() -> None:
    from moto.route53.models import Route53Backend

    original = Route53Backend.change_resource_record_sets
    if getattr(original, "_multicloud_dr", False):
        return

    def change_resource_record_sets(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> None:
        deleted = {_key(c) for c in change_list if c["Action"] == "DELETE"}
        change_list = [{**c, "Action": "UPSERT"} if c["Action"] == "CREATE" and _key(c) in deleted else c
                       for c in change_list]
        return original(self, zoneid, change_list)

    change_resource_record_sets._multicloud_dr = True  # type: ignore[attr-defined]
    Route53Backend.change_resource_record_sets = change_resource_record_sets  # type: ignore[method-assign]


def main() -> None:
    patch()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
