"""Turns compare.sh's results (lines of `SERVER<TAB>JSON`) into one Markdown table. A record
with `"tls": true` (explicit FTPS) is the row of its workload with `-tls` appended. Logins and
idle runs get one set of rows per number of clients (and per paced rate), listings one per
folder. CPU rows are the server's CPU time (its whole process tree) per operation. Below the
table: whether each server converted line ends in TYPE A (compared with its TYPE I download of
the same file), errors within workloads that ran (logins, retr-small, slow-readers), and every
workload that failed.

Usage: python3 table.py RESULTS_FILE
"""
import json
import sys

PEERS = ["vsftpd", "pure-ftpd", "pyftpdlib", "unftp"]
SERVERS = ["ferryd"] + PEERS


def per_entry(field):
    """µs per listed entry of `field` (ms of one listing): flat when listing scales linearly."""
    def value(record):
        ms, entries = record.get(field), record.get("nlst_lines")
        return ms * 1000 / entries if ms is not None and entries else None
    return value


# (label, workload, field, higher_is_better). A workload ending in "@" is a group of rows
# repeated for each run found ("logins@20", "logins@200@2000", "idle@10000", "list-big@many"),
# `{n}` in the label naming the run; a field may be a function of the record.
ROWS = [
    ("retr-big MiB/s", "retr-big", "mib_per_s", True),
    ("retr-big CPU s/GiB", "retr-big", "cpu_s_per_gib", False),
    ("retr-big-ascii MiB/s", "retr-big-ascii", "mib_per_s", True),
    ("stor-big MiB/s", "stor-big", "mib_per_s", True),
    ("stor-big CPU s/GiB", "stor-big", "cpu_s_per_gib", False),
    ("retr-big-tls MiB/s", "retr-big-tls", "mib_per_s", True),
    ("retr-big-tls CPU s/GiB", "retr-big-tls", "cpu_s_per_gib", False),
    ("stor-big-tls MiB/s", "stor-big-tls", "mib_per_s", True),
    ("stor-big-tls CPU s/GiB", "stor-big-tls", "cpu_s_per_gib", False),
    ("logins N={n} sessions/s", "logins@", "per_second", True),
    ("logins N={n} p50 ms", "logins@", "p50_ms", False),
    ("logins N={n} p99 ms", "logins@", "p99_ms", False),
    ("logins N={n} server CPU µs/login", "logins@", "cpu_us_per_login", False),
    ("tls-logins N={n} sessions/s", "logins-tls@", "per_second", True),
    ("tls-logins N={n} p50 ms", "logins-tls@", "p50_ms", False),
    ("tls-logins N={n} p99 ms", "logins-tls@", "p99_ms", False),
    ("tls-logins N={n} server CPU µs/login", "logins-tls@", "cpu_us_per_login", False),
    ("retr-small transfers/s", "retr-small", "per_second", True),
    ("retr-small p50 ms", "retr-small", "p50_ms", False),
    ("retr-small p99 ms", "retr-small", "p99_ms", False),
    ("retr-small CPU µs/transfer", "retr-small", "cpu_us_per_transfer", False),
    ("LIST ms, {n}", "list-big@", "list_ms", False),
    ("LIST µs/entry, {n}", "list-big@", per_entry("list_ms"), False),
    ("MLSD ms, {n}", "list-big@", "mlsd_ms", False),
    ("MLSD µs/entry, {n}", "list-big@", per_entry("mlsd_ms"), False),
    ("NLST ms, {n}", "list-big@", "nlst_ms", False),
    ("NLST µs/entry, {n}", "list-big@", per_entry("nlst_ms"), False),
    ("LIST/MLSD/NLST CPU ms per listing, {n}", "list-big@", "cpu_ms_per_listing", False),
    ("idle N={n} RSS KiB/session", "idle@", "kib_per_session", False),
    ("idle N={n} PSS KiB/session", "idle@", "pss_kib_per_session", False),
    ("idle N={n} s to establish", "idle@", "connect_seconds", False),
    ("idle N={n} CPU µs/session", "idle@", "cpu_us_per_session", False),
    ("slow-readers RSS gain KiB/client", "slow-readers", "kib_per_client", False),
    ("slow-readers PSS gain KiB/client", "slow-readers", "pss_kib_per_client", False),
    ("slow-readers MiB/s total", "slow-readers", "mib_per_s", True),
    ("slow-readers CPU s/GiB", "slow-readers", "cpu_s_per_gib", False),
]


def record_key(record):
    """The row group a successful record belongs to: see ROWS."""
    workload = record["workload"] + ("-tls" if record.get("tls") else "")
    if record["workload"] in ("logins", "idle"):
        workload += f"@{record['clients']}"
        if record.get("offered_per_second"):
            workload += f"@{record['offered_per_second']:.0f}"
    elif record["workload"] == "list-big":
        workload += f"@{record['path']}"
    return workload


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
                results[(server, record_key(record))] = record
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


def folder_entries(results, workload):
    """Entries of a listed folder: the fewest names any server's NLST gave (some add . and ..)."""
    counts = [record.get("nlst_lines") or 0 for (_, w), record in results.items() if w == workload]
    return min([count for count in counts if count] or [0])


def run_label(results, prefix, run):
    """How a run reads in labels: '200', '200 paced 2000/s', or a folder's entry count."""
    if prefix == "list-big@":
        return f"{folder_entries(results, prefix + run):,} entries"
    clients, _, pace = run.partition("@")
    return f"{clients} paced {pace}/s" if pace else clients


def runs_of(results, prefix):
    """The runs of a row group, in order: by clients then rate, or folders by entry count."""
    runs = {w[len(prefix):] for (_, w) in results if w.startswith(prefix)}
    if prefix == "list-big@":
        return sorted(runs, key=lambda run: (folder_entries(results, prefix + run), run))
    return sorted(runs, key=lambda run: [int(part) for part in run.split("@")])


def expanded_rows(results):
    """ROWS with each group repeated, in order, for every run of it found in the results."""
    rows = []
    for index, (label, workload, field, higher) in enumerate(ROWS):
        if not workload.endswith("@"):
            rows.append((label, workload, field, higher))
        elif index == 0 or ROWS[index - 1][1] != workload:
            group = [row for row in ROWS if row[1] == workload]
            for run in runs_of(results, workload):
                name = run_label(results, workload, run)
                rows += [(l.format(n=name), workload + run, f, h) for (l, _, f, h) in group]
    return rows


def value_of(record, field):
    if record is None:
        return None
    return field(record) if callable(field) else record.get(field)


def main():
    results, errors, ceiling = load(sys.argv[1])
    header = ["workload"] + SERVERS + ["best peer", "ferryd ÷ best", "better"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, workload, field, higher in expanded_rows(results):
        values = [value_of(results.get((server, workload)), field) for server in SERVERS]
        if all(value is None for value in values):
            continue
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
    for (server, workload), record in sorted(results.items()):
        if record.get("errors"):
            print(f"\n{server} {workload}: {record['errors']} errors "
                  f"(first: {record.get('first_error')}).")
    for error in errors:
        print(f"\nFailed: {error}")


if __name__ == "__main__":
    main()
