"""Runs the scim2-tester compliance checker against a live gatehouse, then checks that
what SCIM provisions is what LDAP serves.

Called by run.sh with GATEHOUSE_URL, GATEHOUSE_ADMIN_PASSWORD and the LDAP address set.
Sets up what an identity provider would have: a provisioning group, an API key in it,
and a token from the key's client-credentials grant; then runs every check of
scim2-tester against <url>/scim/v2 as that key, prints each result, and exits non-zero
if any check ended in ERROR or CRITICAL (skips are listed with their reason). Last, a
user and a group provisioned over SCIM are read and bound over LDAP (python ldap3).
"""

import os
import sys

import httpx2
import ldap3
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


LDAP_BASE = "dc=example,dc=com"


def ldap_sees_what_scim_provisions(bearer):
    """A SCIM user with a password, in a SCIM group, binds over LDAP and has its
    attributes and memberOf there; deactivated over SCIM, it cannot bind."""
    scim = httpx2.Client(
        base_url=f"{URL}/scim/v2",
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/scim+json"},
    )
    user = scim.post(
        "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ldap.check",
            "name": {"givenName": "Lena", "familyName": "Moreau"},
            "emails": [{"value": "lena@example.com", "primary": True}],
            "password": "Ldap-Check-Pass-42",
        },
    )
    assert user.status_code == 201, user.text
    uid = user.json()["id"]
    group = scim.post(
        "/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "LDAP Check",
            "members": [{"value": uid}],
        },
    )
    assert group.status_code == 201, group.text
    server = ldap3.Server("127.0.0.1", port=int(os.environ["LDAP_PORT"]), get_info=ldap3.NONE)
    dn = f"uid=ldap.check,ou=people,{LDAP_BASE}"
    conn = ldap3.Connection(server, user=dn, password="Ldap-Check-Pass-42")
    assert conn.bind(), conn.result
    conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["mail", "givenName", "sn", "memberOf"])
    assert len(conn.entries) == 1, conn.result
    e = conn.entries[0]
    assert str(e.mail) == "lena@example.com", e
    assert (str(e.givenName), str(e.sn)) == ("Lena", "Moreau"), e
    member_of = [str(m).lower() for m in e.memberOf.values]
    assert f"cn=ldap check,ou=groups,{LDAP_BASE}".lower() in member_of, member_of
    off = scim.patch(
        f"/Users/{uid}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        },
    )
    assert off.status_code == 200, off.text
    conn = ldap3.Connection(server, user=dn, password="Ldap-Check-Pass-42")
    assert not conn.bind() and conn.result["result"] == 49, conn.result


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
    try:
        ldap_sees_what_scim_provisions(bearer)
        passed += 1
        print("SUCCESS    ldap_sees_what_scim_provisions")
    except Exception as exc:  # noqa: BLE001 - reported, and counted as a failure
        failed += 1
        print(f"ERROR      ldap_sees_what_scim_provisions: {exc!r}")
    print(f"scim2-tester: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
