"""Scenario test harness for tandem: the daemon, a raw SMTP client, scripted next hops, a DNS
server, test certificates and interop peers.  See tests/scenario/README.md for a cheat sheet.
"""
from .certs import Certs
from .configs import PARKED_HOP, queued_relay, relay_config
from .daemon import MSGID, Tandem, tandem_binary, tandem_unusable_reason
from .dns import DnsServer
from .interop import (EximPeer, SmtpSink, SwaksResult, have_exim, have_postfix_tools,
                      have_swaks, smtp_source, swaks, swaks_has_tls)
from .nexthop import DROP, GARBAGE, RESET, Message, NextHop, Session, seq, stall
from .ports import free_port, port_open
from .smtpclient import SmtpConn, SmtpError, SmtpTimeout, dot_stuff, pipelined
from .wait import WaitTimeout, wait_until
from .spoolfile import SpoolMessage, parse_spool_bytes, read_journal, read_spool, tmp_leftovers

__all__ = [
    "Certs", "relay_config", "queued_relay", "PARKED_HOP", "MSGID", "Tandem", "tandem_binary",
    "tandem_unusable_reason", "DnsServer",
    "EximPeer", "SmtpSink", "SwaksResult", "have_exim", "have_postfix_tools", "have_swaks",
    "smtp_source", "swaks", "swaks_has_tls", "DROP", "GARBAGE", "RESET", "Message", "NextHop", "Session", "seq",
    "stall", "free_port", "port_open", "SmtpConn", "SmtpError", "SmtpTimeout", "dot_stuff",
    "pipelined", "WaitTimeout", "wait_until", "SpoolMessage", "parse_spool_bytes", "read_journal",
    "read_spool", "tmp_leftovers",
]
