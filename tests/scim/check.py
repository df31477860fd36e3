"""Runs the scim2-tester compliance checker against a live gatehouse.

Called by run.sh with GATEHOUSE_URL and GATEHOUSE_ADMIN_PASSWORD set. Sets up what an
identity provider would have: a provisioning group, an API key in it, and a token from
the key's client-credentials grant; then runs every check of scim2-tester against
<url>/scim/v2 as that key, prints each result, and exits non-zero if any check ended
in ERROR or CRITICAL. Skips are listed with their reason.
"""

import os
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

URL = os.environ["GATEHOUSE_URL"]
ADMIN_PASSWORD = os.environ["GATEHOUSE_ADMIN_PASSWORD"]
GROUP = os.environ.get("GATEHOUSE_SCIM_GROUP", "SCIM Provisioners")


def token(form):
    r = httpx2.post(f"{URL}/authenticate/connect/token", data=form)
    r.raise_for_status()
    return r.json()["access_token"]


def provisioning_token():
    admin = token(
        {"grant_type": "contensis_classic", "username": "admin", "password": ADMIN_PASSWORD}
    )
    api = httpx2.Client(
        base_url=f"{URL}/api/security", headers={"Authorization": f"Bearer {admin}"}
    )
    api.post("/groups", json={"name": GROUP}).raise_for_status()
    key = api.post("/apiKeys", json={"name": "scim-checker"})
    key.raise_for_status()
    key = key.json()
    api.put(f"/groups/{GROUP}/users/{key['userId']}").raise_for_status()
    return token(
        {
            "grant_type": "client_credentials",
            "client_id": key["clientId"],
            "client_secret": key["clientSecret"],
        }
    )


def main():
    bearer = provisioning_token()
    http = httpx2.Client(
        base_url=f"{URL}/scim/v2",
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=30,
    )
    scim = SyncSCIMClient(http)
    results = check_server(scim)
    failed = passed = skipped = 0
    for r in results:
        where = f"[{r.resource_type}] " if r.resource_type else ""
        line = f"{r.status.name:10} {where}{r.title}: {r.reason or ''}"
        if r.status in (Status.ERROR, Status.CRITICAL):
            failed += 1
            print(line.replace("\n", " | "))
            if r.data is not None:
                print(f"           data: {str(r.data)[:2000]}")
        elif r.status == Status.SKIPPED:
            skipped += 1
            print(line)
        else:
            passed += 1
            if os.environ.get("SCIM_CHECK_VERBOSE"):
                print(line)
    print(f"scim2-tester: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
