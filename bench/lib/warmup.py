#!/usr/bin/env python3
"""Reads the metadata of every message of one source user over IMAP, unmeasured,
before the first tool runs.

usage: warmup.py HOST PORT USER PASSWORD

The first IMAP client to touch a freshly filled Dovecot mailbox can pay for
one-time work (maildir sync, index and cache-file updates) that every later client
gets for free; this pass pays it up front so the tool that runs first is not
penalised. Reads no bodies (the harness warms the page cache separately).
"""

import imaplib
import sys


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    imap = imaplib.IMAP4(host, port)
    imap.login(user, password)
    typ, listing = imap.list()
    if typ != "OK":
        raise SystemExit(f"LIST failed: {listing}")
    for line in listing:
        text = line.decode()
        if "\\Noselect" in text:
            continue
        name = text.split(' "/" ', 1)[-1]
        if not name.startswith('"'):
            name = f'"{name}"'
        typ, data = imap.select(name, readonly=True)
        if typ != "OK" or int(data[0]) == 0:
            continue
        for items in (
            "(UID FLAGS INTERNALDATE RFC822.SIZE)",
            "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM SUBJECT)])",
        ):
            typ, _ = imap.uid("FETCH", "1:*", items)
            if typ != "OK":
                raise SystemExit(f"FETCH {items} in {name} failed")
    imap.logout()
    return 0


if __name__ == "__main__":
    sys.exit(main())
