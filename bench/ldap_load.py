"""LDAP load against a running gatehouse (bench/ldap.sh starts it): password binds per
second, and searches per second for the members of one group (memberOf, nested) and for
one user by uid, each with several client processes for a fixed time.

Binds go through ldap3. Searches are sent as pre-encoded BER on a bound socket and their
answers only framed, not decoded: ldap3 decoding 200 entries in Python costs more CPU
than the server spends producing them, and the clients share the server's two cores.

    python3 bench/ldap_load.py HOST PORT BASE KEY_DN KEY_SECRET

Knobs (environment): DURATION (seconds per case), BIND_CLIENTS, SEARCH_CLIENTS,
BIND_USERS (how many of bench0000.. have passwords), GROUP (the group searched).
"""

import multiprocessing as mp
import os
import socket
import statistics
import sys
import time
import urllib.parse
import urllib.request

import ldap3

HOST, PORT, BASE, KEY_DN, KEY_SECRET = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
DURATION = float(os.environ.get("DURATION", "10"))
BIND_CLIENTS = int(os.environ.get("BIND_CLIENTS", "8"))
SEARCH_CLIENTS = int(os.environ.get("SEARCH_CLIENTS", "4"))
BIND_USERS = int(os.environ.get("BIND_USERS", "200"))
GROUP = os.environ.get("GROUP", "team")
USER_COUNT = int(os.environ.get("USER_COUNT", "10000"))
# The HTTP token endpoint, for the same password check through the REST front door.
HTTP_URL = os.environ.get("HTTP_URL")
PASSWORD = "Bench-Horse-42"


def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + body


def octets(s, tag=0x04):
    return tlv(tag, s.encode())


def integer(n, tag=0x02):
    return tlv(tag, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True))


def equality(attr, value):
    return tlv(0xA3, octets(attr) + octets(value))


def message(msgid, op):
    return tlv(0x30, integer(msgid) + op)


def search_request(msgid, base, flt, attrs):
    body = (octets(base) + integer(2, 0x0A) + integer(0, 0x0A) + integer(0) + integer(0)
            + tlv(0x01, b"\x00") + flt + tlv(0x30, b"".join(octets(a) for a in attrs)))
    return message(msgid, tlv(0x63, body))


class Raw:
    """A bound socket that sends a request and reads the answers up to the last one,
    counting entries."""

    def __init__(self):
        self.sock = socket.create_connection((HOST, PORT))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        bind = tlv(0x60, integer(3) + octets(KEY_DN) + octets(KEY_SECRET, 0x80))
        self.sock.sendall(message(1, bind))
        op, code = self.read_one()
        assert op == 0x61 and code == 0, (op, code)

    def read_one(self):
        """One LDAPMessage: its operation tag and, for a result, the result code."""
        while True:
            if len(self.buf) >= 2:
                first = self.buf[1]
                if first < 0x80:
                    start, length = 2, first
                else:
                    k = first & 0x7F
                    start, length = 2 + k, int.from_bytes(self.buf[2:2 + k], "big") if len(self.buf) >= 2 + k else None
                if length is not None and len(self.buf) >= start + length:
                    msg, self.buf = self.buf[start:start + length], self.buf[start + length:]
                    idlen = msg[1]
                    op_at = 2 + idlen
                    op = msg[op_at]
                    code = None
                    if op in (0x61, 0x65):
                        oplen = msg[op_at + 1]
                        skip = 1 + (oplen & 0x7F) if oplen & 0x80 else 1
                        code = msg[op_at + 1 + skip + 2]
                    return op, code
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def search(self, request):
        self.sock.sendall(request)
        entries = 0
        while True:
            op, code = self.read_one()
            if op == 0x64:
                entries += 1
            elif op == 0x65:
                return code == 0, entries


def connection(user=KEY_DN, password=KEY_SECRET):
    conn = ldap3.Connection(ldap3.Server(HOST, port=PORT, get_info=ldap3.NONE), user=user,
                            password=password, raise_exceptions=False)
    assert conn.bind(), conn.result
    return conn


def run(case, worker):
    conn = None if case == "token" else connection() if case == "bind" else Raw()
    member_of = search_request(
        2, f"ou=people,{BASE}",
        tlv(0xA0, equality("objectClass", "person")
            + equality("memberOf", f"cn={GROUP},ou=groups,{BASE}")),
        ["uid", "mail", "cn"])
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
        elif case == "token":
            body = urllib.parse.urlencode({
                "grant_type": "contensis_classic", "username": f"bench{i % BIND_USERS:04d}",
                "password": PASSWORD}).encode()
            i += BIND_CLIENTS
            try:
                with urllib.request.urlopen(f"{HTTP_URL}/authenticate/connect/token", body) as r:
                    ok = r.status == 200
            except OSError:
                ok = False
        elif case == "memberOf":
            ok, n = conn.search(member_of)
            entries += n
        else:
            uid = f"user{(i * 7919) % USER_COUNT:05d}"
            ok, n = conn.search(search_request(3, f"ou=people,{BASE}", equality("uid", uid),
                                               ["uid", "mail", "memberOf"]))
            i += 1
            entries += n
        latencies.append(time.monotonic() - started)
        if not ok:
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
    if HTTP_URL:
        bad += case("token", BIND_CLIENTS)
    bad += case("memberOf", SEARCH_CLIENTS)
    bad += case("uid", SEARCH_CLIENTS)
    sys.exit(1 if bad else 0)
