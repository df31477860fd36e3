"""LDAP load against a running gatehouse (bench/ldap.sh starts it): password binds per
second, and searches per second for the members of one group (memberOf, nested) and for
one user by uid, each with several client processes for a fixed time.

    python3 bench/ldap_load.py HOST PORT BASE KEY_DN KEY_SECRET

Knobs (environment): DURATION (seconds per case), BIND_CLIENTS, SEARCH_CLIENTS,
BIND_USERS (how many of bench0000.. have passwords), GROUP (the group searched).
"""

import multiprocessing as mp
import os
import statistics
import sys
import time

import ldap3

HOST, PORT, BASE, KEY_DN, KEY_SECRET = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
DURATION = float(os.environ.get("DURATION", "10"))
BIND_CLIENTS = int(os.environ.get("BIND_CLIENTS", "8"))
SEARCH_CLIENTS = int(os.environ.get("SEARCH_CLIENTS", "4"))
BIND_USERS = int(os.environ.get("BIND_USERS", "200"))
GROUP = os.environ.get("GROUP", "team")
USER_COUNT = int(os.environ.get("USER_COUNT", "10000"))
PASSWORD = "Bench-Horse-42"


def connection(user=KEY_DN, password=KEY_SECRET):
    conn = ldap3.Connection(ldap3.Server(HOST, port=PORT, get_info=ldap3.NONE), user=user,
                            password=password, raise_exceptions=False)
    assert conn.bind(), conn.result
    return conn


def run(case, worker):
    conn = connection()
    latencies = []
    errors = 0
    entries = 0
    i = worker
    deadline = time.monotonic() + DURATION
    while time.monotonic() < deadline:
        started = time.monotonic()
        if case == "bind":
            user = f"uid=bench{i % BIND_USERS:04d},ou=people,{BASE}"
            ok = conn.rebind(user=user, password=PASSWORD)
            i += BIND_CLIENTS
        elif case == "memberOf":
            ok = conn.search(f"ou=people,{BASE}",
                             f"(&(objectClass=person)(memberOf=cn={GROUP},ou=groups,{BASE}))",
                             attributes=["uid", "mail", "cn"])
            entries += len(conn.response)
        else:
            ok = conn.search(f"ou=people,{BASE}", f"(uid=user{(i * 7919) % USER_COUNT:05d})",
                             attributes=["uid", "mail", "memberOf"])
            i += 1
            entries += len(conn.response)
        latencies.append(time.monotonic() - started)
        # ldap3 answers False for a search without entries too: read the result code.
        if not ok and (case == "bind" or conn.result["result"] != 0):
            errors += 1
    return len(latencies), errors, entries, latencies


def case(name, clients):
    with mp.Pool(clients) as pool:
        started = time.monotonic()
        results = pool.starmap(run, [(name, w) for w in range(clients)])
        elapsed = time.monotonic() - started
    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    entries = sum(r[2] for r in results)
    lat = sorted(x for r in results for x in r[3])
    p50 = statistics.median(lat) * 1000
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
    per_op = entries / done if done else 0
    print(f"| {name} | {clients} | {done / DURATION:,.0f} | {p50:.1f} ms | {p99:.1f} ms | "
          f"{per_op:.0f} | {errors} |", flush=True)
    return errors


if __name__ == "__main__":
    print("| case | clients | ops/s | p50 | p99 | entries per op | errors |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    bad = case("bind", BIND_CLIENTS)
    bad += case("memberOf", SEARCH_CLIENTS)
    bad += case("uid", SEARCH_CLIENTS)
    sys.exit(1 if bad else 0)
