"""Prints the echo comparison table from one or more of run.sh's TSVs.

    python3 table.py RUN.tsv [MORE.tsv ...]

A cell measured in several rounds shows, for each server, the round with the
median messages/s (its latency and CPU columns come from that round too).
Given several runs, their rounds pool: a cell's median is taken over every
round of every run, which a noisy machine needs more than one run to settle.
"""
import csv
import sys

PEERS = ["tungstenite", "tungstenite-forward", "fastwebsockets", "tokio-websockets", "sockudo-ws", "yawc", "yawc-batched"]
CEILINGS = ["raw", "store-forward"]
COLUMNS = CEILINGS + ["rfc6455"] + PEERS


def size_name(size):
    size = int(size)
    for unit, name in ((1 << 20, "MiB"), (1 << 10, "KiB")):
        if size >= unit:
            return f"{size // unit} {name}"
    return f"{size} B"


def rate(value):
    value = float(value)
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def median_row(runs):
    """The run with the median messages/s (the lower middle of an even count)."""
    ordered = sorted(runs, key=lambda row: float(row["msgs_per_s"]))
    return ordered[(len(ordered) - 1) // 2]


def main(paths):
    headers, rows = [], []
    for path in paths:
        with open(path) as f:
            headers.append(f.readline().strip())
            rows.extend(csv.DictReader(f, delimiter="\t"))
    rounds = {}
    for row in rows:
        key = (int(row["size"]), int(row["conns"]), int(row["depth"]))
        rounds.setdefault(key, {}).setdefault(row["server"], []).append(row)
    cells = {
        key: {server: median_row(runs) for server, runs in servers.items()}
        for key, servers in rounds.items()
    }
    print("\n".join(headers))
    print()
    print("| payload | conns | depth | " + " | ".join(COLUMNS) + " | ours / best peer | ours / raw | ours / store-forward | p50 / p99 µs (ours, depth 1) | load-gen CPU (raw / ours) | server CPU (ours) |")
    print("|" + " --- |" * (len(COLUMNS) + 9))
    for key in sorted(cells):
        got = cells[key]
        msgs = {name: float(got[name]["msgs_per_s"]) for name in COLUMNS if name in got}
        best_peer = max((msgs.get(p, 0.0) for p in PEERS), default=0.0)
        ours = msgs.get("rfc6455", 0.0)
        ratio = f"{ours / best_peer:.2f}×" if best_peer else "–"
        ceiling, held = (
            f"{ours / msgs[name]:.2f}×" if msgs.get(name) else "–" for name in CEILINGS
        )
        latency = "–"
        if key[2] == 1 and "rfc6455" in got:
            latency = f"{got['rfc6455']['p50_us']} / {got['rfc6455']['p99_us']}"
        loadgen = " / ".join(got.get(name, {}).get("loadgen_cpu", "–") for name in ("raw", "rfc6455"))
        server = got.get("rfc6455", {}).get("server_cpu", "–")
        values = " | ".join(rate(msgs[name]) if name in msgs else "–" for name in COLUMNS)
        print(f"| {size_name(key[0])} | {key[1]} | {key[2]} | {values} | {ratio} | {ceiling} | {held} | {latency} | {loadgen} | {server} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
