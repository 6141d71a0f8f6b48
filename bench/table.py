"""Turns compare.sh's results (lines of `SERVER<TAB>JSON`) into one Markdown table. A record
with `"tls": true` (explicit FTPS) is the row of its workload with `-tls` appended. Below the
table: whether each server converted line ends in TYPE A (compared with its TYPE I download of
the same file), and any slow-readers errors.

Usage: python3 table.py RESULTS_FILE
"""
import json
import sys

PEERS = ["vsftpd", "pure-ftpd", "pyftpdlib"]
SERVERS = ["ferryd"] + PEERS
# (label, workload, field, higher_is_better)
ROWS = [
    ("retr-big MiB/s", "retr-big", "mib_per_s", True),
    ("retr-big-ascii MiB/s", "retr-big-ascii", "mib_per_s", True),
    ("stor-big MiB/s", "stor-big", "mib_per_s", True),
    ("retr-big-tls MiB/s", "retr-big-tls", "mib_per_s", True),
    ("stor-big-tls MiB/s", "stor-big-tls", "mib_per_s", True),
    # One set of login rows for each number of clients measured ("logins@N"), and for each
    # paced run ("logins@N@RATE").
    ("logins N={n} sessions/s", "logins@", "per_second", True),
    ("logins N={n} p50 ms", "logins@", "p50_ms", False),
    ("logins N={n} p99 ms", "logins@", "p99_ms", False),
    ("retr-small transfers/s", "retr-small", "per_second", True),
    ("retr-small p50 ms", "retr-small", "p50_ms", False),
    ("retr-small p99 ms", "retr-small", "p99_ms", False),
    ("LIST ms", "list-big", "list_ms", False),
    ("MLSD ms", "list-big", "mlsd_ms", False),
    ("NLST ms", "list-big", "nlst_ms", False),
    ("idle RSS KiB/session", "idle", "kib_per_session", False),
    ("idle PSS KiB/session", "idle", "pss_kib_per_session", False),
    ("slow-readers RSS gain KiB/client", "slow-readers", "kib_per_client", False),
    ("slow-readers PSS gain KiB/client", "slow-readers", "pss_kib_per_client", False),
    ("slow-readers MiB/s total", "slow-readers", "mib_per_s", True),
]


def load(path):
    results, errors, ceiling = {}, [], None
    with open(path) as lines:
        for line in lines:
            server, _, text = line.rstrip("\n").partition("\t")
            record = json.loads(text)
            if "error" in record:
                errors.append(f"{server} {record.get('workload', '?')}: {record['error']}")
            elif server == "loopback":
                ceiling = record
            else:
                workload = record["workload"] + ("-tls" if record.get("tls") else "")
                if workload == "logins":
                    workload = f"logins@{record['clients']}"
                    if record.get("offered_per_second"):
                        workload += f"@{record['offered_per_second']:.0f}"
                results[(server, workload)] = record
    return results, errors, ceiling


def figure(value):
    if value is None:
        return "—"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"


def ratio_cell(ferryd, peers, higher_is_better):
    peers = [value for value in peers if value is not None]
    if ferryd is None or not peers:
        return "—", "—"
    best = max(peers) if higher_is_better else min(peers)
    if best == 0:
        return figure(best), "—"
    return figure(best), f"{ferryd / best:.2f}×"


def ascii_note(results, server):
    """What `server` did with TYPE A: bytes received beside its TYPE I download's."""
    binary = results.get((server, "retr-big"))
    ascii = results.get((server, "retr-big-ascii"))
    if binary is None or ascii is None:
        return None
    speed = f"{ascii['mib_per_s'] / binary['mib_per_s']:.2f}× its TYPE I MiB/s"
    if ascii["bytes"] == binary["bytes"]:
        return f"{server} sent the file unconverted ({speed})"
    return f"{server} converted LF to CRLF ({ascii['bytes'] - binary['bytes']:+,} bytes, {speed})"


def run_label(run):
    """'200' stays '200'; a paced run '200@2000' reads '200 paced 2000/s'."""
    clients, _, pace = run.partition("@")
    return f"{clients} paced {pace}/s" if pace else clients


def main():
    results, errors, ceiling = load(sys.argv[1])
    header = ["workload"] + SERVERS + ["best peer", "ferryd ÷ best", "better"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    # "20", "200", then paced runs such as "200@2000".
    login_runs = sorted({w.split("@", 1)[1] for (_, w) in results if w.startswith("logins@")},
                        key=lambda run: [int(part) for part in run.split("@")])
    login_rows = [row for row in ROWS if row[1] == "logins@"]
    rows = []
    for label, workload, field, higher in ROWS:
        if workload != "logins@":
            rows.append((label, workload, field, higher))
        elif (label, workload, field, higher) == login_rows[0]:
            rows += [(l.format(n=run_label(run)), f"logins@{run}", f, h) for run in login_runs
                     for (l, _, f, h) in login_rows]
    for label, workload, field, higher in rows:
        values = [results.get((server, workload), {}).get(field) for server in SERVERS]
        best, ratio = ratio_cell(values[0], values[1:], higher)
        cells = [label] + [figure(value) for value in values] + [best, ratio, "higher" if higher else "lower"]
        print("| " + " | ".join(cells) + " |")
    if ceiling:
        print(f"\nLoopback ceiling (plain read/write of the big file over one TCP connection): "
              f"{ceiling['mib_per_s']:.0f} MiB/s (median of {ceiling['runs']}).")
    notes = [ascii_note(results, server) for server in SERVERS]
    notes = [note for note in notes if note]
    if notes:
        print("\nTYPE A downloads: " + "; ".join(notes) + ".")
    for server in SERVERS:
        slow = results.get((server, "slow-readers"))
        if slow and slow.get("errors"):
            print(f"\n{server} slow-readers: {slow['errors']} of {slow['clients']} clients failed "
                  f"({slow.get('first_error')}).")
    for error in errors:
        print(f"\nFailed: {error}")


if __name__ == "__main__":
    main()
