"""Reads wrk --latency output and prints: label, requests/s, p50, p99 (tab-separated)."""
import re
import sys

label, path = sys.argv[1], sys.argv[2]
text = open(path).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if non2xx:
    label += f" ({non2xx.group(1)} non-2xx)"
print("\t".join([label, rps.group(1) if rps else "0", p50.group(1) if p50 else "-", p99.group(1) if p99 else "-"]))
