#!/usr/bin/env python3
"""Compares one source account with its copy on the target, using doveadm.

usage: verify.py SRC_CONFIG SRC_USER DST_CONFIG DST_USER

Checks, per folder of the source, the number of messages on both sides (folders
missing on the target count as 0; extra non-empty folders on the target are
reported too), and the number of \\Flagged messages in all folders. Prints nothing and
exits 0 when everything matches; otherwise prints one line per difference and
exits 1. Exits 2 if doveadm fails.
"""

import subprocess
import sys


def doveadm(config: str, *args: str) -> str:
    result = subprocess.run(
        ["doveadm", "-c", config, *args], capture_output=True, text=True
    )
    if result.returncode != 0:
        print(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        sys.exit(2)
    return result.stdout


def counts(config: str, user: str) -> dict:
    out = doveadm(config, "-f", "tab", "mailbox", "status", "-u", user, "messages", "*")
    result = {}
    for line in out.splitlines()[1:]:
        name, _, messages = line.rpartition("\t")
        if name:
            result[name] = int(messages)
    return result


def flagged(config: str, user: str) -> int:
    out = doveadm(config, "search", "-u", user, "flagged")
    return len([line for line in out.splitlines() if line.strip()])


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    src_config, src_user, dst_config, dst_user = sys.argv[1:]
    src, dst = counts(src_config, src_user), counts(dst_config, dst_user)
    problems = []
    for name, n in sorted(src.items()):
        if dst.get(name, 0) != n:
            problems.append(f"{dst_user}: folder `{name}` has {dst.get(name, 0)} messages, source has {n}")
    for name, n in sorted(dst.items()):
        if name not in src and n > 0:
            problems.append(f"{dst_user}: extra folder `{name}` with {n} messages")
    src_flagged, dst_flagged = flagged(src_config, src_user), flagged(dst_config, dst_user)
    if src_flagged != dst_flagged:
        problems.append(f"{dst_user}: {dst_flagged} \\Flagged messages, source has {src_flagged}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
