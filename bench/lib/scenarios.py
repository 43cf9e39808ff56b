"""The loads bench/run applies, and the servers it applies them to.

A scenario is one shape of load: message size, parallel sessions, recipients per message, and
whether a session's messages share one connection (smtp-source -d; the default) or each
message gets a connection of its own.  Every scenario runs against every server kind.
"""
from collections import namedtuple

Scenario = namedtuple("Scenario", "name size sessions rcpts reuse")

KIB, MIB = 1024, 1024 * 1024

SCENARIOS = [
    Scenario("4k-s1", 4 * KIB, 1, 1, True),
    Scenario("4k-s10", 4 * KIB, 10, 1, True),
    Scenario("4k-s50", 4 * KIB, 50, 1, True),
    Scenario("4k-s200", 4 * KIB, 200, 1, True),
    Scenario("4k-s1-r5", 4 * KIB, 1, 5, True),
    Scenario("4k-s50-r5", 4 * KIB, 50, 5, True),
    Scenario("1m-s10", 1 * MIB, 10, 1, True),
    Scenario("4k-s50-newconn", 4 * KIB, 50, 1, False),
    Scenario("4k-s20-newconn", 4 * KIB, 20, 1, False),
]

SMOKE_SCENARIOS = [SCENARIOS[0], SCENARIOS[1]]

# Server kinds, in table order: (key, label, the option that adds it: "" = always)
SERVERS = [
    ("sink", "smtp-sink (direct)", ""),
    ("tandem-ct", "tandem cutthrough", ""),
    ("tandem-ct-dnsl", "tandem cutthrough + dnslists", "edge"),
    ("tandem-ct-spam", "tandem cutthrough + spam (rspamd)", "edge"),
    ("tandem-sf", "tandem store-and-forward", ""),
    ("exim-ct", "Exim cutthrough", "vs_exim"),
    ("exim-sf", "Exim store-and-forward", "vs_exim"),
    ("haproxy-1", "HAProxy + 1 tandem node (cutthrough)", "haproxy"),
    ("haproxy-2", "HAProxy + 2 tandem nodes (cutthrough)", "haproxy"),
    ("tandem-ct-nopool", "tandem cutthrough, no pool (onward_pool_size = 0)", "pool"),
    ("tandem-ct-tls", "tandem cutthrough, STARTTLS to the next hop (a tandem), pooled", "pool"),
    ("tandem-ct-tls-nopool", "tandem cutthrough, STARTTLS to the next hop, no pool", "pool"),
]

SERVER_LABELS = {key: label for key, label, _ in SERVERS}


def describe(s):
    """'4 KiB x 1 rcpt, 50 sessions, connection reused' and the like."""
    size = f"{s.size // MIB} MiB" if s.size >= MIB else f"{s.size // KIB} KiB"
    conn = "one connection per session" if s.reuse else "a connection per message"
    return f"{size}, {s.rcpts} rcpt, {s.sessions} session{'s' if s.sessions > 1 else ''}, {conn}"
