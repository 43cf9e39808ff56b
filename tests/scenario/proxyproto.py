"""PROXY protocol headers (HAProxy's v1 text and v2 binary) for tests, built by hand.

    v1("203.0.113.7", "127.0.0.1", 40000, 25)            # b"PROXY TCP4 ... \\r\\n"
    v2("2001:db8::7", "::1", 40000, 25)                  # family from the address
    v2(local=True)                                        # LOCAL command (health check)
    v2("203.0.113.7", "127.0.0.1", 1, 2, fam=0x31)        # another family byte
"""
import ipaddress
import struct

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst, sport, dport, family=None):
    """A v1 line; family defaults to TCP4 or TCP6 from src."""
    if family is None:
        family = "TCP6" if ipaddress.ip_address(src).version == 6 else "TCP4"
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src=None, dst=None, sport=0, dport=0, local=False, fam=None, tlvs=b"", length=None):
    """A v2 header: PROXY (or LOCAL) command, addresses from src/dst, optional raw TLVs;
    ``fam`` overrides the family/protocol byte, ``length`` the length field."""
    cmd = 0x20 if local else 0x21
    if src is None:
        block = b""
        f = 0x00
    elif ipaddress.ip_address(src).version == 4:
        block = (ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed +
                 struct.pack("!HH", sport, dport))
        f = 0x11
    else:
        block = (ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed +
                 struct.pack("!HH", sport, dport))
        f = 0x21
    if fam is not None:
        f = fam
    payload = block + tlvs
    n = len(payload) if length is None else length
    return V2_SIG + bytes([cmd, f]) + struct.pack("!H", n) + payload
