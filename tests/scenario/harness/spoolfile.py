"""Read tandem spool files (doc/spool.md) so tests can assert on what was stored.

    msg = read_spool(t.spool, msg_id)
    msg.sender, msg.rcpts ([{"addr", "notify", "orcpt"}]), msg.fields["C"], msg.content (bytes),
    msg.headers() -> [(name, value)], msg.header("Received") -> [values]

An independent reader on purpose: it checks the writer against the written spec.
"""
import os
import re
from dataclasses import dataclass, field

MAGIC = b"tandem-spool 1\n"


@dataclass
class SpoolMessage:
    id: str
    records: list = field(default_factory=list)   # [(type, payload)]
    rcpts: list = field(default_factory=list)
    fields: dict = field(default_factory=dict)
    content: bytes = b""

    @property
    def sender(self):
        return self.fields.get("S", b"").decode("utf-8", "replace")

    def header_block(self):
        """The header section (up to the first empty line)."""
        end = self.content.find(b"\r\n\r\n")
        return self.content if end < 0 else self.content[:end + 2]

    def headers(self):
        """[(name, value)] with continuation lines unfolded."""
        out = []
        for line in self.header_block().split(b"\r\n"):
            if not line:
                continue
            if line[:1] in (b" ", b"\t") and out:
                out[-1] = (out[-1][0], out[-1][1] + b"\r\n" + line)
            elif b":" in line:
                name, value = line.split(b":", 1)
                out.append((name.decode(), value.strip()))
        return out

    def header(self, name):
        return [v for n, v in self.headers() if n.lower() == name.lower()]

    def body(self):
        end = self.content.find(b"\r\n\r\n")
        return b"" if end < 0 else self.content[end + 4:]


def parse_spool_bytes(data, msg_id=""):
    """Parse one spool file's bytes; raises ValueError if it does not follow the format."""
    if not data.startswith(MAGIC):
        raise ValueError("bad magic")
    pos, msg = len(MAGIC), SpoolMessage(msg_id)
    chunks = []
    while pos < len(data):
        m = re.compile(rb"(.)(0|[1-9][0-9]{0,5}):").match(data, pos)
        if not m:
            raise ValueError(f"bad record header at {pos}")
        rtype, length = m.group(1).decode("latin-1"), int(m.group(2))
        start = m.end()
        payload = data[start:start + length]
        if len(payload) != length or data[start + length:start + length + 1] != b"\n":
            raise ValueError(f"bad record framing at {pos}")
        pos = start + length + 1
        msg.records.append((rtype, payload))
        if rtype == "R":
            msg.rcpts.append({"addr": payload.decode("utf-8", "replace"), "notify": None, "orcpt": None})
        elif rtype == "N":
            msg.rcpts[-1]["notify"] = int(payload)
        elif rtype == "O":
            msg.rcpts[-1]["orcpt"] = payload.decode("utf-8", "replace")
        elif rtype == "D":
            chunks.append(payload)
        else:
            msg.fields[rtype] = payload
    if not msg.records or msg.records[-1][0] != "X":
        raise ValueError("no END record")
    msg.content = b"".join(chunks)
    if int(msg.fields["Z"]) != len(msg.content):
        raise ValueError("size record disagrees with content")
    return msg


def tmp_leftovers(spool_dir):
    """What spool_dir/tmp holds of messages: every file but the empty reusable ones ("pool-*",
    kept by a worker for its next message)."""
    tmp = os.path.join(spool_dir, "tmp")
    return sorted(n for n in os.listdir(tmp)
                  if not (n.startswith("pool-") and os.path.getsize(os.path.join(tmp, n)) == 0))


def read_spool(spool_dir, msg_id):
    """The committed message msg_id in spool_dir/input."""
    with open(os.path.join(spool_dir, "input", msg_id), "rb") as f:
        return parse_spool_bytes(f.read(), msg_id)


def read_journal(spool_dir, msg_id):
    """{rcpt index: "d"|"f"} from the message's journal (empty if none)."""
    path = os.path.join(spool_dir, "input", msg_id + "-J")
    if not os.path.exists(path):
        return {}
    states = {}
    with open(path, "rb") as f:
        for line in f.read().split(b"\n"):
            if len(line) >= 2 and line[:1] in (b"d", b"f"):
                states[int(line[1:])] = line[:1].decode()
    return states
