"""Configuration texts for the servers under test: tandem and Exim, each in two modes.

    tandem_config(dir, port, sink_port, cutthrough=True, tls=None)
    exim_config(dir, port, sink_port, cutthrough=True)

Both relay every recipient to the sink at 127.0.0.1:<sink_port> and accept every client; the
only difference between the modes is `control = cutthrough_delivery` in the RCPT ACL.
Connection limits are raised far above the load (smtp_accept_max, per host), and nothing is
looked up in the DNS (the route is an IP literal, Exim's host_lookup and ident are off).
"""


def tandem_config(directory, port, sink_port, cutthrough=True, tls=None, extra="",
                  tls_outbound="none"):
    """tandem relaying everything to the sink; `tls` = (cert, key) offers STARTTLS; `extra`
    adds main options (hosts_proxy behind HAProxy, onward_pool_size), or is a dict(main=...,
    rcpt=..., acls=...): main options, RCPT ACL statements before the accept, and further ACLs
    (the edge policy kinds, bench/lib/edge.py); `tls_outbound` is the policy towards the next
    hop ("encrypt" when it is a tandem offering STARTTLS)."""
    extra = extra if isinstance(extra, dict) else {"main": extra}
    control = "  accept  control = cutthrough_delivery" if cutthrough else "  accept"
    control = extra.get("rcpt", "") + control
    tls_lines = (f"tls_certificate = {tls[0]}\ntls_privatekey = {tls[1]}\n" if tls else "")
    main_lines = extra.get("main", "")
    return f"""\
# tandem under bench/run ({'cutthrough' if cutthrough else 'store-and-forward'})
hostname = tandem.bench
listen = 127.0.0.1:{port}
spool_directory = {directory}/spool
log_directory = {directory}/log
workers = auto
message_size_limit = 50M
recipients_max = 1000
smtp_accept_max = 30000
smtp_accept_max_per_host = 30000
smtp_receive_timeout = 5m
remote_max_parallel = 200
callout_max_per_host = 10000
tls_outbound = {tls_outbound}
{tls_lines}{main_lines}acl_smtp_rcpt = check_rcpt

begin routes
*   [127.0.0.1]:{sink_port}

begin acl
check_rcpt:
{control}
{extra.get("acls", "")}"""


def exim_config(directory, port, sink_port, cutthrough=True, extra=""):
    """Exim 4 relaying everything to the sink; immediate delivery in store-and-forward mode.

    smtp_accept_queue_per_connection = 0: Exim's default (10) would stop delivering immediately
    after the 10th message of a connection and leave the rest for a queue runner (none here).
    smtp_connect_backlog: the default (20) overflows at 200 parallel sessions.
    deliver_drop_privilege: a relay needs no root to deliver over SMTP; without it the
    reception process re-execs exim (-Mc) to regain root for every message, which triples
    Exim's CPU per message in store-and-forward mode (measured: 500 execve for 500 messages).
    `extra` is added to the main options verbatim.
    """
    control = "  accept  control = cutthrough_delivery" if cutthrough else "  accept"
    return f"""\
# Exim under bench/run ({'cutthrough' if cutthrough else 'store-and-forward'})
keep_environment =
primary_hostname = exim.bench
spool_directory = {directory}/spool
log_file_path = {directory}/log/%slog
pid_file_path = {directory}/exim.pid
local_interfaces = 127.0.0.1
daemon_smtp_ports = {port}
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
message_size_limit = 50M
recipients_max = 1000
smtp_accept_max = 0
smtp_accept_queue_per_connection = 0
smtp_connect_backlog = 1024
deliver_drop_privilege = true
{extra}
acl_smtp_rcpt = check_rcpt

begin acl
check_rcpt:
{control}

begin routers
to_sink:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = to_sink
  no_more

begin transports
to_sink:
  driver = smtp
  port = {sink_port}
  allow_localhost
  hosts_avoid_tls = *

begin retry
*  *  F,1h,1m
"""
