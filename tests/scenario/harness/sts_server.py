"""StsServer: an HTTPS server for MTA-STS policies (RFC 8461), with the test CA.

MTA-STS policies live at https://mta-sts.DOMAIN/.well-known/mta-sts.txt, always on port 443, so
the server binds port 443 (this needs root, as the scenario tests have) on an address of its own
in 127/8, chosen at random so that parallel runs do not meet.  Point mta-sts.DOMAIN at
``server.ip`` in the test's DNS.

    sts = StsServer(certs, "example.test", policy="version: STSv1\\nmode: enforce\\n"
                                                  "mx: *.example.test\\nmax_age: 86400\\n")
    sts.ip                  # "127.83.4.19": the A record of mta-sts.example.test
    sts.requests            # [(path, sni)] of every GET
    sts.set(policy=..., status=200, content_type="text/plain")
    sts.stop(); sts.start() # down and up again on the same address
"""
import http.server
import random
import socket
import ssl
import threading


def _random_ip():
    return f"127.{random.randrange(1, 255)}.{random.randrange(0, 256)}.{random.randrange(1, 255)}"


class StsServer:
    """See the module docstring."""

    def __init__(self, certs, domain, policy="", status=200, content_type="text/plain",
                 cert_names=None):
        self.domain = domain
        self.policy, self.status, self.content_type = policy, status, content_type
        self.requests = []
        self._lock = threading.Lock()
        names = cert_names or [f"mta-sts.{domain}"]
        self.cert, self.key = certs.issue("sts-" + "-".join(names).replace("*", "star"), names)
        self.ip = None
        self.httpd = None
        self.start()

    def set(self, policy=None, status=None, content_type=None):
        with self._lock:
            if policy is not None:
                self.policy = policy
            if status is not None:
                self.status = status
            if content_type is not None:
                self.content_type = content_type

    def _handler(self):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                sni = getattr(self.connection, "sni", None)
                with owner._lock:
                    owner.requests.append((self.path, sni))
                    status, body, ctype = owner.status, owner.policy.encode(), owner.content_type
                if self.path != "/.well-known/mta-sts.txt":
                    status, body = 404, b"not found\n"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        return Handler

    def _context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)

        def remember_sni(sock, name, _ctx):
            sock.sni = name
        ctx.sni_callback = remember_sni
        return ctx

    def start(self):
        """Listen on ip:443 (a new random ip the first time, the same one afterwards)."""
        for _ in range(50):
            ip = self.ip or _random_ip()
            try:
                httpd = http.server.ThreadingHTTPServer((ip, 443), self._handler())
            except OSError:
                if self.ip:
                    raise
                continue
            httpd.daemon_threads = True
            ctx = self._context()
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
            self.ip, self.httpd = ip, httpd
            threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True,
                             name=f"sts-{ip}").start()
            return
        raise RuntimeError("StsServer: cannot bind port 443 on 127/8 (root needed)")

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
