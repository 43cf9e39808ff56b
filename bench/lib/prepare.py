"""Before measuring: packages, an optimised tandem, the latency client, resource limits.

    install_deps()           scripts/install-deps --test (Postfix tools, Exim, swaks, strace)
    build(cflags) -> (tandem binary, latency binary)
    raise_fd_limit() -> the new soft limit on open files (inherited by every server/client)
"""
import os
import resource
import subprocess

from util import BENCH, BUILD, REPO, log


def install_deps():
    log("installing dependencies (scripts/install-deps --test)")
    subprocess.run([os.path.join(REPO, "scripts", "install-deps"), "--test"], check=True,
                   stdout=subprocess.DEVNULL)


def build(cflags, build_tandem=True):
    """make B=build/bench CFLAGS=...; cc bench/latency.c (warning-free with -Werror)."""
    os.makedirs(BUILD, exist_ok=True)
    if build_tandem:
        log(f"building tandem into {os.path.relpath(BUILD, REPO)} with CFLAGS=\"{cflags}\"")
        subprocess.run(["make", "-s", "-C", REPO, "-j2", f"B={os.path.relpath(BUILD, REPO)}",
                        f"CFLAGS={cflags}", "all"], check=True)
    latency = os.path.join(BUILD, "latency")
    src = os.path.join(BENCH, "latency.c")
    if not os.path.exists(latency) or os.path.getmtime(latency) < os.path.getmtime(src):
        subprocess.run(["cc", "-O2", "-g", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow",
                        "-o", latency, src, "-lssl", "-lcrypto"], check=True)
    return os.path.join(BUILD, "tandem"), latency


def raise_fd_limit(want=65536):
    """Soft limit to the hard limit (and the hard limit up to `want` when allowed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
