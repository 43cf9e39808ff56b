"""Config text for the common scenario: tandem relaying some domains to a next hop.

    t = tandem(relay_config(hop))                          # example.test -> hop, plain relay
    t = tandem(relay_config(hop, cutthrough=True, callout="10s,defer_ok", defer="pass"))
    t = tandem(relay_config("mx", domains="example.test : other.test",
                            main=dns.config_line + "\\nremote_port = %d" % hop.port))

``next_hop`` is a NextHop (its ``route`` is used), or route text such as "mx" or
"[127.0.0.2]:2525 [127.0.0.3]:2525"; ``route_options`` is appended to the route line
("tls=verify").  The RCPT ACL refuses other domains ("relay not permitted"), optionally
requires a callout, and accepts, with cutthrough when asked.  ``acl`` adds lines at the top of
the RCPT ACL; ``main`` adds main options; ``extra`` is appended at the very end (more ACLs).
Nothing here is magic: print the result when in doubt, and write the text by hand for
anything unusual.

``queued_relay()`` is the other common scenario: example.test is relayed to a next hop nobody
listens on ([127.0.0.2]:2599), so accepted mail stays queued; tests edit its text freely
(``.replace("begin acl\n", "begin acl\ncheck_data: ...")``).
"""

PARKED_HOP = "[127.0.0.2]:2599"   # nothing listens there: deliveries defer, mail stays queued


def queued_relay(deny_others=False, relay_from_hosts=None):
    """Relay example.test to PARKED_HOP; other domains are refused ("relay not permitted" when
    deny_others, else by falling off the ACL); relay_from_hosts defines that host list."""
    text = "\ndomainlist relay_to_domains = example.test\n"
    if relay_from_hosts is not None:
        text += f"hostlist relay_from_hosts = {relay_from_hosts}".rstrip() + "\n"
    text += ("acl_smtp_rcpt = check_rcpt\nbegin routes\n*  " + PARKED_HOP + "\nbegin acl\n"
             "check_rcpt:\n  accept domains = +relay_to_domains\n")
    if deny_others:
        text += "  deny   message = relay not permitted\n"
    return text


def relay_config(next_hop, domains="example.test", cutthrough=False, callout=None, defer=None,
                 split=None, route_options="", acl="", main="", extra=""):
    """Main options, one route and a RCPT ACL (see the module docstring)."""
    hop = getattr(next_hop, "route", next_hop)
    control = "cutthrough_delivery"
    if defer:
        control += f"/defer={defer}"
    if split:
        control += f"/split={split}"
    lines = [f"domainlist relay_to_domains = {domains}", "acl_smtp_rcpt = check_rcpt"]
    lines += [main.strip("\n")] if main.strip() else []
    lines += ["", "begin routes", f"+relay_to_domains  {hop}  {route_options}".rstrip(),
             "", "begin acl", "check_rcpt:"]
    lines += [f"  {ln.strip()}" for ln in acl.splitlines() if ln.strip()]
    lines += ["  deny    message = relay not permitted", "          !domains = +relay_to_domains"]
    if callout is not None and callout is not False:
        opts = "" if callout in (True, "") else f"={callout}"
        lines.append(f"  require verify = recipient/callout{opts}")
    lines.append(f"  accept  control = {control}" if cutthrough else "  accept")
    return "\n".join(lines) + "\n" + extra
