#!/usr/bin/env python3
"""Prints the CPU seconds (user+system) used so far by a Dovecot master and all its
children, including children that have already exited and been reaped.

usage: srvcpu.py MASTER_PID

Dovecot's master forks every service process (imap, imap-login, auth, ...) itself
and reaps them, so master utime+stime+cutime+cstime plus utime+stime+cutime+cstime
of each live child is everything the instance has used. Take the difference of two
readings for one run.
"""

import os
import sys


def fields(pid: str):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # "pid (comm) state ppid ..." and comm may contain spaces or parentheses.
    return stat[stat.rindex(")") + 2:].split()


def main() -> int:
    master = sys.argv[1]
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    rest = fields(master)
    # After comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    total += sum(int(x) for x in rest[11:15])
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == master:
            continue
        try:
            rest = fields(pid)
        except (OSError, ValueError):
            continue
        if rest[1] == master:
            total += sum(int(x) for x in rest[11:15])
    print(f"{total / tick:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
