#!/usr/bin/env python3
"""Applies the benchmark's small delta to one source user over plain IMAP.

usage: delta.py HOST PORT USER PASSWORD NEW FLAGS SEED

Appends NEW fresh messages (2-50 KB of text, deterministic for SEED) to INBOX and
sets \\Flagged on FLAGS messages that are not flagged yet: the first unflagged ones
of INBOX, then of the other folders in LIST order (looked up before the APPENDs, so
the new ones are not among them). Prints one JSON line:
{"user":..., "appended": N, "bytes": B, "flagged": F}.
"""

import imaplib
import json
import random
import sys
import time

WORDS = (
    "the migration mailbox server please find attached report we should meet on "
    "Tuesday to discuss budget and timeline for next quarter thanks again regards "
    "customer invoice payment due within days of receipt project team update status"
).split()


def message(rng: random.Random, user: str, serial: int) -> bytes:
    size = rng.randint(2_000, 50_000)
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    head = (
        f"From: Delta Sender <delta@example.test>\r\n"
        f"To: {user} <{user}@example.test>\r\n"
        f"Subject: Delta message {serial} for {user}\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <delta-{serial}-{rng.getrandbits(64):x}@example.test>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    lines = []
    length = len(head)
    while length < size:
        line = " ".join(rng.choice(WORDS) for _ in range(12)) + "\r\n"
        lines.append(line)
        length += len(line)
    return (head + "".join(lines)).encode("ascii")


def main() -> int:
    if len(sys.argv) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    new, flags, seed = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
    rng = random.Random(f"{seed}-{user}")

    imap = imaplib.IMAP4(host, port)
    imap.login(user, password)
    typ, listing = imap.list()
    if typ != "OK":
        raise SystemExit(f"LIST failed: {listing}")
    folders = ["INBOX"]
    for line in listing:
        # (\\HasNoChildren) "/" "Folder 001"   or   ... "/" INBOX
        name = line.decode().split(' "/" ', 1)[-1]
        if name.startswith('"'):
            name = name[1:-1]
        if name != "INBOX" and "\\Noselect" not in line.decode():
            folders.append(name)
    to_flag = []  # (folder, [uids])
    wanted = flags
    for folder in folders:
        if wanted <= 0:
            break
        typ, data = imap.select(f'"{folder}"')
        if typ != "OK":
            continue
        typ, data = imap.uid("SEARCH", None, "UNFLAGGED")
        if typ != "OK":
            raise SystemExit(f"UID SEARCH in {folder} failed: {data}")
        uids = [int(u) for u in data[0].split()][:wanted]
        if uids:
            to_flag.append((folder, uids))
            wanted -= len(uids)
    appended = 0
    total = 0
    for serial in range(new):
        raw = message(rng, user, serial)
        typ, data = imap.append("INBOX", None, None, raw)
        if typ != "OK":
            raise SystemExit(f"APPEND failed: {data}")
        appended += 1
        total += len(raw)

    flagged = 0
    for folder, uids in to_flag:
        imap.select(f'"{folder}"')
        typ, data = imap.uid("STORE", ",".join(map(str, uids)), "+FLAGS.SILENT", r"(\Flagged)")
        if typ != "OK":
            raise SystemExit(f"UID STORE in {folder} failed: {data}")
        flagged += len(uids)
    imap.logout()
    print(json.dumps({"user": user, "appended": appended, "bytes": total, "flagged": flagged}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
