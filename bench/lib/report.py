#!/usr/bin/env python3
"""Renders the benchmark results as a text table (stdout) and a markdown file.

usage: report.py RESULTS_TSV WARNINGS_TSV META_JSON OUT_MD

RESULTS_TSV has one row per tool and pass, tab-separated, no header:
  tool pass status wall_s messages bytes cpu_s peak_rss_kb src_cpu_s dst_cpu_s note
where status is ok, unavailable, failed or skipped (then note says why).
WARNINGS_TSV: tool pass message, one difference found by verify.py per line.
META_JSON: a flat object of run facts (date, sizes, versions, command) for the
markdown header.
"""

import json
import sys

PASS_NAMES = {
    "a": "a: full copy",
    "b": "b: nothing new",
    "c": "c: delta",
}
COLUMNS = [
    "tool",
    "pass",
    "wall s",
    "msgs/s",
    "MB/s",
    "CPU s",
    "peak RSS MB",
    "src srv CPU s",
    "dst srv CPU s",
    "all CPU s",
    "peer/mailferry",
]


def number(text: str):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def fmt(value, digits=1):
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def read_tsv(path: str):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    rows.append(line.split("\t"))
    except FileNotFoundError:
        pass
    return rows


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    results = read_tsv(sys.argv[1])
    warnings = read_tsv(sys.argv[2])
    with open(sys.argv[3]) as f:
        meta = json.load(f)
    out_md = sys.argv[4]

    # mailferry's wall time per pass, for the ratio column.
    reference = {}
    for row in results:
        tool, pass_, status, wall = row[0], row[1], row[2], number(row[3])
        if tool == "mailferry" and status == "ok" and wall:
            reference[pass_] = wall

    # Group by pass (a, b, c), tools in the order they ran.
    tool_order = {}
    for row in results:
        tool_order.setdefault(row[0], len(tool_order))
    results.sort(key=lambda row: (row[1], tool_order[row[0]]))

    table = []
    for row in results:
        row = row + [""] * (11 - len(row))
        tool, pass_, status, wall_s, msgs, nbytes, cpu, rss_kb, src_cpu, dst_cpu, note = row
        label = PASS_NAMES.get(pass_, pass_)
        if status != "ok":
            table.append([tool, label, f"{tool}: {note}"])
            continue
        wall = number(wall_s)
        messages = number(msgs)
        size = number(nbytes)
        rate = messages / wall if wall and messages else None
        mbps = size / 1e6 / wall if wall and size else None
        rss = number(rss_kb)
        cpus = [number(cpu), number(src_cpu), number(dst_cpu)]
        total = sum(c for c in cpus if c is not None) if number(cpu) is not None else None
        ratio = "-"
        if tool == "mailferry":
            ratio = "1.00" if wall else "-"
        elif pass_ in reference and wall:
            ratio = f"{wall / reference[pass_]:.2f}"
        elif "mailferry" in meta.get("tools", ""):
            ratio = "n/a"
        table.append(
            [
                tool,
                label,
                fmt(wall, 2),
                fmt(rate, 0),
                fmt(mbps, 1),
                fmt(number(cpu), 2),
                fmt(rss / 1024 if rss is not None else None, 0),
                fmt(number(src_cpu), 2),
                fmt(number(dst_cpu), 2),
                fmt(total, 2),
                ratio,
            ]
        )
    for tool, pass_, message in ((w + ["", "", ""])[:3] for w in warnings):
        table.append([tool, PASS_NAMES.get(pass_, pass_), f"WARNING: {message}"])

    # Text table: full rows aligned; short rows (status/warning) span the rest.
    widths = [len(c) for c in COLUMNS]
    for row in table:
        # A short row (status or warning) is aligned on its tool and pass only.
        aligned = row if len(row) == len(COLUMNS) else row[:2]
        for i, cell in enumerate(aligned):
            widths[i] = max(widths[i], len(cell))
    def line(cells):
        if len(cells) == len(COLUMNS):
            return "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            )
        return "  ".join(c.ljust(w) for c, w in zip(cells[:2], widths)) + "  " + cells[2]
    print(line(COLUMNS))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print(line(row))

    with open(out_md, "w") as f:
        f.write(f"# mailferry benchmark, {meta.get('date', '')}\n\n")
        for key in (
            "command",
            "corpus",
            "machine",
            "git",
            "mailferry",
            "mbsync",
            "dovecot",
            "parallel",
        ):
            if meta.get(key):
                f.write(f"- **{key}**: {meta[key]}\n")
        f.write("\n| " + " | ".join(COLUMNS) + " |\n")
        f.write("|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|\n")
        for row in table:
            if len(row) == len(COLUMNS):
                f.write("| " + " | ".join(row) + " |\n")
            else:
                cells = row[:2] + [row[2]] + [""] * (len(COLUMNS) - 3)
                f.write("| " + " | ".join(cells) + " |\n")
        f.write(
            "\nwall s: from the first per-user process started to the last one finished. "
            "msgs/s and MB/s: messages (bytes) copied in that pass divided by wall s "
            "(pass b copies nothing, so `-`). CPU s: user+system of the tool's own "
            "processes, summed over users; peak RSS: the largest single process. "
            "src/dst srv CPU s: what the source/target Dovecot used meanwhile "
            "(doveadm writes the target's maildirs itself, so its dst srv CPU is ~0 and "
            "that work is in its own CPU s); all CPU s: the sum of the three. peer/mailferry: peer wall s / mailferry wall s "
            "for the same pass; > 1 means mailferry is faster.\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
