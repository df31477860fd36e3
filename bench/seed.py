"""Writes the load benchmark's data set: seed.jsonl for `gatehouse import`, and the
request paths each wrk script rotates through."""
import json
import random
import sys

work, users, groups, per_user, depth = sys.argv[1], *map(int, sys.argv[2:6])
rng = random.Random(42)
member_of = []
with open(f"{work}/seed.jsonl", "w") as f:
    for g in range(groups):
        f.write(json.dumps({"type": "group", "name": f"g{g:05d}"}) + "\n")
    for g in range(groups):
        if (g + 1) % depth and g + 1 < groups:
            f.write(json.dumps({"type": "child", "parent": f"g{g:05d}", "child": f"g{g + 1:05d}"}) + "\n")
    for u in range(users):
        mine = rng.sample(range(groups), min(per_user, groups))
        member_of.append(mine)
        f.write(json.dumps({"type": "user", "username": f"u{u:07d}", "email": f"u{u:07d}@example.com",
                            "firstName": f"First{u % 5000}", "lastName": f"Last{u % 7919}",
                            "groups": [f"g{g:05d}" for g in mine]}) + "\n")

def write(name, paths):
    with open(f"{work}/{name}.paths", "w") as f:
        f.write("\n".join(paths) + "\n")

n = 20000
checks = []
for _ in range(n):
    u = rng.randrange(users)
    g = rng.choice(member_of[u])
    top = g - g % depth  # the top of the chain g belongs to: a nested "yes"
    checks.append(f"/api/security/groups/g{top:05d}/users/u{u:07d}")
write("member_check", checks)
# Enough adds that a run never repeats one (an add of an existing member commits but
# writes no row): 800,000 is 16 s at 50,000 a second. Nearly all are new pairs.
adds = int(sys.argv[6]) if len(sys.argv) > 6 else 800_000
write("add_member", [f"/api/security/groups/g{rng.randrange(groups):05d}/users/u{rng.randrange(users):07d}" for _ in range(adds)])
write("get_user", [f"/api/security/users/u{rng.randrange(users):07d}" for _ in range(n)])
