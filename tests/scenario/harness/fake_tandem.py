#!/usr/bin/python3
"""A stand-in for build/tandem, used only by the harness self-tests (test_harness.py).

It understands just enough to exercise the `tandem` fixture: ``serve -c FILE --foreground``
(listen, spool_directory and log_directory from the config; a trivial SMTP server that spools
each message under spool/input/ID and logs an Exim-style ``<=`` line; a body containing
"PANIC" writes to the paniclog), and ``queue -c FILE list --count``.  ``fake_sigterm = ignore``
in the config makes it hang on SIGTERM, ``fake_sigterm = 3`` exit with status 3.
"""
import os
import random
import re
import signal
import socketserver
import string
import sys
import time

ALNUM = string.digits + string.ascii_letters


def parse_config(path):
    conf = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^\s*(\w+)\s*=\s*(.*?)\s*$", line)
            if m:
                conf[m.group(1)] = m.group(2)
    return conf


def log(conf, name, text):
    with open(os.path.join(conf["log_directory"], name), "a") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + text + "\n")


def new_id():
    pick = lambda n: "".join(random.choice(ALNUM) for _ in range(n))
    return f"{pick(6)}-{pick(6)}-{pick(2)}"


class Session(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        conf, sender, rcpts = self.server.conf, None, []
        self.reply(f"220 {conf.get('hostname', 'fake')} ESMTP fake-tandem")
        for raw in self.rfile:
            verb = raw.split(b" ")[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                self.reply("250 fake")
            elif verb == b"MAIL":
                sender = raw.decode().partition("<")[2].partition(">")[0]
                self.reply("250 OK")
            elif verb == b"RCPT":
                rcpts.append(raw.decode().partition("<")[2].partition(">")[0])
                self.reply("250 OK")
            elif verb == b"DATA":
                self.reply("354 go")
                self.receive(conf, sender, rcpts)
            elif verb == b"QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")

    def receive(self, conf, sender, rcpts):
        body = b"".join(iter(self.rfile.readline, b".\r\n"))
        msgid = new_id()
        with open(os.path.join(conf["spool_directory"], "input", msgid), "wb") as f:
            f.write(body)
        log(conf, "mainlog", f"{msgid} <= {sender} H=[127.0.0.1] P=esmtp S={len(body)}")
        if b"PANIC" in body:
            log(conf, "paniclog", f"{msgid} fake panic requested")
        self.reply(f"250 OK id={msgid}")


def serve(conf):
    host, port = conf["listen"].rsplit(":", 1)
    os.makedirs(os.path.join(conf["spool_directory"], "input"), exist_ok=True)
    os.makedirs(conf["log_directory"], exist_ok=True)
    on_term = conf.get("fake_sigterm", "0")
    if on_term == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(int(on_term)))
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    server = socketserver.ThreadingTCPServer((host, int(port)), Session)
    server.conf = conf
    log(conf, "mainlog", f"fake tandem daemon started: pid={os.getpid()}")
    server.serve_forever()


def main(argv):
    if len(argv) < 4 or argv[2] != "-c":
        sys.stderr.write("usage: fake_tandem serve|queue -c FILE ...\n")
        return 64
    conf = parse_config(argv[3])
    if argv[1] == "serve":
        return serve(conf)
    if argv[1] == "queue" and argv[4:] == ["list", "--count"]:
        print(len(os.listdir(os.path.join(conf["spool_directory"], "input"))))
        return 0
    sys.stderr.write(f"fake_tandem: unsupported: {argv[1:]}\n")
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
