"""Python's ldap3 against a live gatehouse (started by run.sh, which exports the
addresses and credentials), and raw sockets for what no client sends: malformed BER,
oversized messages, floods and idle connections.

The filters Nextcloud, Gitea and Grafana send are written out as those applications'
LDAP settings produce them (docs/ldap.md shows the settings).

Plain functions named test_*, run in order; the last line is "N passed, N failed".
"""

import os
import socket
import ssl
import sys
import time
import traceback

import ldap3
from ldap3.core.exceptions import LDAPException

HOST = os.environ["LDAP_HOST"]
PORT = int(os.environ["LDAP_PORT"])
LDAPS_PORT = int(os.environ["LDAPS_PORT"])
BASE = os.environ["LDAP_BASE"]
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
PASSWORD = os.environ["LDAP_PASSWORD"]
SERVICE = f"cn={os.environ['LDAP_KEY_ID']},ou=services,{BASE}"
SECRET = os.environ["LDAP_KEY_SECRET"]
CA = os.environ["LDAP_CA"]


def server(port=PORT, use_ssl=False):
    tls = ldap3.Tls(ca_certs_file=CA, validate=ssl.CERT_REQUIRED) if use_ssl else None
    return ldap3.Server(HOST, port=port, use_ssl=use_ssl, tls=tls, get_info=ldap3.NONE)


def connect(user=SERVICE, password=SECRET, **kw):
    conn = ldap3.Connection(server(**kw), user=user, password=password, raise_exceptions=False)
    assert conn.bind(), f"bind as {user} failed: {conn.result}"
    return conn


def as_service():
    return connect()


def as_user(name):
    return connect(f"uid={name},{PEOPLE}", PASSWORD)


def uids(conn, base, flt, **kw):
    ok = conn.search(base, flt, attributes=["uid"], **kw)
    assert ok or conn.result["result"] == 0, conn.result
    return sorted(str(e.uid) for e in conn.entries)


def cns(conn, flt, base=GROUPS):
    conn.search(base, flt, attributes=["cn"])
    assert conn.result["result"] == 0, conn.result
    return sorted(str(e.cn) for e in conn.entries)


# --- binds and who am I


def test_bind_as_user_and_who_am_i():
    conn = as_user("alice")
    assert conn.extend.standard.who_am_i() == f"dn:uid=alice,{PEOPLE}"


def test_wrong_password_and_suspended_user_are_refused():
    for user, password in [
        (f"uid=alice,{PEOPLE}", "nope-nope-nope"),
        (f"uid=bob,{PEOPLE}", PASSWORD),  # suspended
        (f"uid=nobody,{PEOPLE}", PASSWORD),
    ]:
        conn = ldap3.Connection(server(), user=user, password=password)
        assert not conn.bind()
        assert conn.result["result"] == 49, conn.result


def test_binds_are_in_the_audit_log_like_token_logins():
    """A bind runs the password grant's code, so it records the same login events."""
    import json
    import urllib.parse
    import urllib.request

    http = os.environ["HTTP_URL"]
    form = urllib.parse.urlencode({
        "grant_type": "contensis_classic",
        "username": "admin",
        "password": os.environ["LDAP_ADMIN_PASSWORD"],
    }).encode()
    with urllib.request.urlopen(f"{http}/authenticate/connect/token", form) as r:
        token = json.load(r)["access_token"]

    def count(kind):
        req = urllib.request.Request(
            f"{http}/api/security/audit?type={kind}&target=carol",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(req) as r:
            return json.load(r)["totalCount"]

    before = (count("login.succeeded"), count("login.failed"))
    as_user("carol")
    conn = ldap3.Connection(server(), user=f"uid=carol,{PEOPLE}", password="wrong-wrong-1")
    assert not conn.bind()
    after = (count("login.succeeded"), count("login.failed"))
    assert after == (before[0] + 1, before[1] + 1), (before, after)


def test_anonymous_sees_only_the_root_dse():
    conn = ldap3.Connection(server())
    assert conn.bind()
    assert conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["namingContexts"])
    assert [str(v) for v in conn.entries[0].namingContexts] == [BASE]
    conn.search(BASE, "(uid=alice)")
    assert conn.result["result"] == 50, conn.result


def test_ldaps_with_the_test_certificate():
    conn = connect(f"uid=alice,{PEOPLE}", PASSWORD, port=LDAPS_PORT, use_ssl=True)
    assert conn.extend.standard.who_am_i() == f"dn:uid=alice,{PEOPLE}"


def test_start_tls():
    tls = ldap3.Tls(ca_certs_file=CA, validate=ssl.CERT_REQUIRED)
    conn = ldap3.Connection(ldap3.Server(HOST, port=PORT, tls=tls), user=f"uid=alice,{PEOPLE}", password=PASSWORD)
    conn.open()
    assert conn.start_tls(), conn.result
    assert conn.bind(), conn.result
    assert conn.extend.standard.who_am_i() == f"dn:uid=alice,{PEOPLE}"


# --- search


def test_search_by_uid_mail_and_entry_uuid():
    conn = as_service()
    assert uids(conn, BASE, "(uid=alice)") == ["alice"]
    assert uids(conn, PEOPLE, "(mail=Alice@Example.com)") == ["alice"]
    conn.search(PEOPLE, "(uid=alice)", attributes=["entryUUID", "mail", "givenName", "sn", "displayName"])
    e = conn.entries[0]
    assert str(e.mail) == "alice@example.com" and str(e.givenName) == "Alice" and str(e.sn) == "Liddell"
    assert str(e.displayName) == "Alice Liddell"
    assert uids(conn, PEOPLE, f"(entryUUID={e.entryUUID})") == ["alice"]


def test_member_of_follows_nesting_five_deep():
    conn = as_service()
    # carol is in n5, grace in n1; n1 > n2 > n3 > n4 > n5.
    assert uids(conn, PEOPLE, f"(memberOf=cn=n1,{GROUPS})") == ["carol", "grace"]
    assert uids(conn, PEOPLE, f"(memberOf=cn=n3,{GROUPS})") == ["carol"]
    assert uids(conn, PEOPLE, f"(&(objectClass=person)(!(memberOf=cn=n1,{GROUPS}))(uid=carol))") == []
    conn.search(PEOPLE, "(uid=carol)", attributes=["memberOf"])
    member_of = sorted(str(v).split(",")[0] for v in conn.entries[0].memberOf)
    assert member_of == ["cn=n1", "cn=n2", "cn=n3", "cn=n4", "cn=n5"], member_of
    # The group entry lists direct members: users and child groups.
    conn.search(GROUPS, "(cn=n4)", attributes=["member", "uniqueMember"])
    assert [str(v) for v in conn.entries[0].member] == [f"cn=n5,{GROUPS}"]
    assert cns(conn, f"(member=cn=n5,{GROUPS})") == ["n4"]


def test_paged_results_over_2500_users():
    conn = as_service()
    seen = []
    cookie = None
    pages = 0
    while True:
        conn.search(PEOPLE, "(objectClass=inetOrgPerson)", search_scope=ldap3.LEVEL,
                    attributes=["uid"], paged_size=400, paged_cookie=cookie)
        assert conn.result["result"] == 0, conn.result
        pages += 1
        seen.extend(str(e.uid) for e in conn.entries)
        cookie = conn.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
        if not cookie:
            break
    assert len(seen) == 2508 and len(set(seen)) == 2508, (len(seen), len(set(seen)))
    assert pages == 7, pages
    # The generator ldap3 offers does the same.
    got = list(conn.extend.standard.paged_search(BASE, "(objectClass=person)", attributes=["uid"],
                                                  paged_size=1000, generator=True))
    assert len([e for e in got if e["type"] == "searchResEntry"]) == 2508


def test_subtree_from_the_base_pages_across_users_and_groups():
    conn = as_service()
    seen = []
    for e in conn.extend.standard.paged_search(BASE, "(objectClass=*)", attributes=["1.1"],
                                               paged_size=333, generator=True):
        if e["type"] == "searchResEntry":
            seen.append(e["dn"].lower())
    # base + 2 OUs + 2,508 people + 11 groups
    assert len(seen) == 3 + 2508 + 11 and len(set(seen)) == len(seen), len(seen)


def test_size_and_time_limits():
    conn = as_service()
    conn.search(PEOPLE, "(objectClass=person)", attributes=["uid"], size_limit=5)
    assert conn.result["result"] == 4 and len(conn.entries) == 5, conn.result
    conn.search(PEOPLE, "(uid=alice)", attributes=["uid"], time_limit=5)
    assert conn.result["result"] == 0


def test_filters_nextcloud_sends():
    conn = as_service()
    users_group = f"cn=ldap-users,{GROUPS}"
    # User filter (Users tab: only these object classes, only these groups).
    user_filter = f"(&(|(objectclass=inetOrgPerson))(|(memberof={users_group})))"
    assert uids(conn, BASE, user_filter) == ["alice", "bob", "dave"]
    # Login filter with %uid = alice, and the same by email.
    for login in ["alice", "alice@example.com"]:
        flt = f"(&(&(|(objectclass=inetOrgPerson))(|(memberof={users_group})))(|(uid={login})(|(mail={login}))))"
        assert uids(conn, BASE, flt) == ["alice"]
    # Group filter, and the groups of a user by uniqueMember.
    assert cns(conn, "(&(|(objectclass=groupOfUniqueNames))(|(cn=ldap-users)(cn=n1)))") == ["ldap-users", "n1"]
    assert cns(conn, f"(&(objectclass=groupOfUniqueNames)(uniqueMember=uid=alice,{PEOPLE}))") == ["Dev, Ops", "ldap-users"]
    # Nextcloud's UUID detection reads entryUUID.
    conn.search(PEOPLE, "(uid=alice)", attributes=["entryuuid", "memberof"])
    assert len(str(conn.entries[0].entryUUID)) == 36


def test_filters_gitea_sends():
    conn = as_service()
    users_group = f"cn=ldap-users,{GROUPS}"
    user_filter = f"(&(objectClass=person)(memberOf={users_group})(|(uid=%s)(mail=%s)))"
    assert uids(conn, PEOPLE, user_filter.replace("%s", "dave")) == ["dave"]
    assert uids(conn, PEOPLE, user_filter.replace("%s", "carol")) == []
    admin_filter = f"(memberOf=cn=System Administrators,{GROUPS})"
    assert uids(conn, PEOPLE, f"(&(uid=admin){admin_filter})") == ["admin"]
    assert uids(conn, PEOPLE, f"(&(uid=alice){admin_filter})") == []
    # Group sync: groups whose member is the user's DN.
    assert cns(conn, f"(&(objectClass=groupOfNames)(member=uid=carol,{PEOPLE}))") == ["n5"]


def test_filters_grafana_sends():
    conn = as_service()
    search_filter = "(|(uid=%s)(mail=%s))"
    assert uids(conn, BASE, search_filter.replace("%s", "alice@example.com")) == ["alice"]
    # group_search_filter with group_search_filter_user_attribute = "uid": a bare name.
    group_filter = "(&(objectClass=groupOfUniqueNames)(uniqueMember=%s))"
    assert cns(conn, group_filter.replace("%s", "alice")) == ["Dev, Ops", "ldap-users"]
    # Or with the DN, and Grafana's memberOf attribute mapping.
    assert cns(conn, group_filter.replace("%s", f"uid=grace,{PEOPLE}")) == ["n1"]
    conn.search(PEOPLE, "(uid=alice)", attributes=["uid", "givenName", "sn", "mail", "memberOf"])
    assert sorted(str(v) for v in conn.entries[0].memberOf) == [f"cn=Dev\\, Ops,{GROUPS}", f"cn=ldap-users,{GROUPS}"]


def test_substring_presence_not_and_timestamps():
    conn = as_service()
    assert len(uids(conn, PEOPLE, "(uid=user24*9)")) == 10
    assert uids(conn, PEOPLE, "(&(uid=*)(mail=*@example.com)(givenName=*)(!(sn=*)))") == ["bob"]
    assert uids(conn, PEOPLE, "(&(uid=user000*)(createTimestamp<=19991231235959Z))") == []
    assert len(uids(conn, PEOPLE, "(&(uid=user000*)(modifyTimestamp>=20000101000000Z))")) == 10


def test_substring_parts_never_overlap():
    conn = as_service()
    # RFC 4517: the parts match in order without sharing characters.
    assert uids(conn, PEOPLE, "(uid=al*ce)") == ["alice"]
    assert uids(conn, PEOPLE, "(uid=ali*ice)") == []
    assert uids(conn, PEOPLE, "(uid=ca*ar*l)") == []
    assert uids(conn, PEOPLE, "(uid=c*r*l)") == ["carol"]
    assert uids(conn, PEOPLE, "(mail=user00*9*@bulk.example.com)") == ["user0009", "user0019", "user0029", "user0039",
                                                                    "user0049", "user0059", "user0069", "user0079",
                                                                    "user0089", "user0090", "user0091", "user0092",
                                                                    "user0093", "user0094", "user0095", "user0096",
                                                                    "user0097", "user0098", "user0099"]


def test_member_of_and_member_presence():
    conn = as_service()
    # In some group (directly or not) / in none; erin and frank are in none.
    named = "(objectClass=person)(!(uid=user*))"
    none = uids(conn, PEOPLE, f"(&{named}(!(memberOf=*)))")
    assert none == ["erin", "frank"], none
    some = uids(conn, PEOPLE, f"(&{named}(memberOf=*))")
    assert some == ["admin", "alice", "bob", "carol", "dave", "grace"], some
    assert len(uids(conn, PEOPLE, "(&(uid=user*)(memberOf=*))")) == 2500
    # A group has members when it holds a user or a child group; n1..n4 hold only groups.
    empty = cns(conn, "(&(objectClass=groupOfNames)(!(member=*)))")
    assert empty == ["empty"], empty
    assert cns(conn, "(&(cn=n*)(member=*))") == ["n1", "n2", "n3", "n4", "n5"]
    assert cns(conn, "(&(cn=n*)(uniqueMember=*))") == ["n1", "n2", "n3", "n4", "n5"]


def test_attribute_selection():
    conn = as_service()
    conn.search(PEOPLE, "(uid=alice)", attributes=["1.1"])
    assert conn.entries[0].entry_attributes == []
    conn.search(PEOPLE, "(uid=alice)", attributes=["+"])
    attrs = set(conn.entries[0].entry_attributes)
    assert {"entryUUID", "createTimestamp", "modifyTimestamp"} <= attrs and "uid" not in attrs, attrs
    conn.search(PEOPLE, "(uid=alice)", attributes=["*"])
    attrs = set(conn.entries[0].entry_attributes)
    assert {"uid", "mail", "cn", "memberOf", "objectClass"} <= attrs and "entryUUID" not in attrs, attrs


def test_a_user_sees_their_own_entry_and_groups_only():
    conn = as_user("grace")
    assert uids(conn, BASE, "(objectClass=person)") == ["grace"]
    assert uids(conn, PEOPLE, "(uid=alice)") == []
    assert cns(conn, "(objectClass=groupOfNames)") == ["n1"]
    conn.search(GROUPS, "(cn=n1)", attributes=["member"])
    assert [str(v) for v in conn.entries[0].member] == [f"uid=grace,{PEOPLE}"]


def test_password_modify_through_the_policy():
    conn = as_user("frank")
    assert not conn.extend.standard.modify_password(old_password="wrong-one-1", new_password="Fresh-Horse-44")
    assert conn.result["result"] == 49, conn.result
    assert not conn.extend.standard.modify_password(old_password=PASSWORD, new_password="frank")
    assert conn.result["result"] == 19, conn.result
    assert conn.extend.standard.modify_password(old_password=PASSWORD, new_password="Fresh-Horse-44"), conn.result
    connect(f"uid=frank,{PEOPLE}", "Fresh-Horse-44")
    bad = ldap3.Connection(server(), user=f"uid=frank,{PEOPLE}", password=PASSWORD)
    assert not bad.bind()


def test_writes_are_unwilling_to_perform():
    conn = as_service()
    conn.add(f"uid=new,{PEOPLE}", ["inetOrgPerson"], {"sn": "x", "cn": "x"})
    assert conn.result["result"] == 53, conn.result
    conn.modify(f"uid=alice,{PEOPLE}", {"mail": [(ldap3.MODIFY_REPLACE, ["x@example.com"])]})
    assert conn.result["result"] == 53, conn.result
    conn.modify_dn(f"uid=alice,{PEOPLE}", "uid=alice2")
    assert conn.result["result"] == 53, conn.result


def test_deep_filters_are_refused_with_a_result():
    conn = as_service()
    flt = "(uid=alice)"
    for _ in range(40):
        flt = f"(&{flt})"
    conn.search(PEOPLE, flt, attributes=["uid"])
    assert conn.result["result"] == 53, conn.result
    # The connection still works.
    assert uids(conn, PEOPLE, "(uid=alice)") == ["alice"]


# --- what no client sends


def raw(payload, read=True):
    s = socket.create_connection((HOST, PORT), timeout=5)
    try:
        s.sendall(payload)
        if not read:
            return s
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    finally:
        if read:
            s.close()


NOTICE_OID = b"1.3.6.1.4.1.1466.20036"


def test_malformed_ber_gets_a_notice_of_disconnection():
    for junk in [
        b"\x04\x01\x41",  # an octet string where a message should be
        b"\x30\x06\x02\x01\x01\x01\x01\xff",  # a boolean where an operation should be
        b"\x30\x03\x02\x01\x01",  # a message id and no operation
        b"\x30\x07\x02\x01\x01\x60\x02\x02\x00",  # a bind request cut short inside
    ]:
        answer = raw(junk)
        assert NOTICE_OID in answer and b"\x0a\x01\x02" in answer, (junk, answer)  # protocolError
    assert uids(as_service(), PEOPLE, "(uid=alice)") == ["alice"]


def test_an_oversized_message_is_refused_and_the_connection_closed():
    # A search whose filter value is 200 KB: past the 64 KiB cap.
    value = b"a" * 200_000
    length = lambda n: b"\x84" + n.to_bytes(4, "big")
    eq = b"\xa3" + length(len(value) + 7) + b"\x04\x03uid" + b"\x04" + length(len(value)) + value
    body = b"\x02\x01\x02" + b"\x63" + length(len(eq) + 8) + b"\x04\x00\x0a\x01\x00\x0a\x01\x00" + eq
    msg = b"\x30" + length(len(body)) + body
    try:
        answer = raw(msg)
    except (ConnectionResetError, BrokenPipeError):
        answer = b""
    assert answer == b"" or NOTICE_OID in answer, answer[:100]
    assert uids(as_service(), PEOPLE, "(uid=alice)") == ["alice"]


def test_unknown_critical_control():
    conn = as_service()
    conn.search(PEOPLE, "(uid=alice)", attributes=["uid"], controls=[("1.2.3.4.5", True, None)])
    assert conn.result["result"] == 12, conn.result
    conn.search(PEOPLE, "(uid=alice)", attributes=["uid"], controls=[("1.2.3.4.5", False, None)])
    assert conn.result["result"] == 0 and len(conn.entries) == 1


def test_idle_connections_are_closed():
    s = raw(b"", read=False)
    s.settimeout(10)
    started = time.monotonic()
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    waited = time.monotonic() - started
    assert 3 <= waited <= 8, waited  # --ldap-idle-timeout-secs 4
    assert NOTICE_OID in data


def test_a_connection_flood_is_bounded():
    # --ldap-max-connections 40: past it a connection is told busy and closed.
    held = [socket.create_connection((HOST, PORT), timeout=5) for _ in range(60)]
    busy = 0
    for s in held:
        s.settimeout(0.5)
        try:
            data = s.recv(4096)
            if NOTICE_OID in data and b"\x0a\x01\x33" in data:  # busy (51)
                busy += 1
        except socket.timeout:
            pass
    for s in held:
        s.close()
    assert busy >= 20, busy
    time.sleep(0.5)
    assert uids(as_service(), PEOPLE, "(uid=alice)") == ["alice"]


def main():
    tests = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except (AssertionError, LDAPException, OSError):
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc(limit=3)
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"ldap3: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
