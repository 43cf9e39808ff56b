#!/usr/bin/python3
"""reaper.py CMD [ARG...] - run a server under a dedicated parent that accounts all its CPU.

The reaper makes itself a *child subreaper* (prctl PR_SET_CHILD_SUBREAPER), starts CMD and then
does nothing but wait(2) for descendants.  A process whose parent dies (a daemon's
double-forked delivery process, say) is re-parented to the reaper instead of to init, so every
process of the server ends up reaped either by its own parent or by the reaper.  The kernel
adds a reaped child's CPU time (and that of everything it reaped) to the reaper's
cutime/cstime (getrusage RUSAGE_CHILDREN), visible in /proc/<reaper>/stat fields 16-17.  Hence,
at any moment,

    server CPU = reaper's cutime+cstime + sum over live descendants of utime+stime+cutime+cstime

which is exact at quiet moments (nothing forking or exiting) - see proctree.py.  The reaper's
own CPU (a few wait() calls) is not part of the server's.

SIGTERM/SIGINT to the reaper go to CMD's process group (CMD is started in a group of its own);
the reaper exits, with CMD's status, once every descendant has exited.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv):
    if not argv:
        sys.stderr.write("usage: reaper.py CMD [ARG...]\n")
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.stderr.write("reaper: prctl(PR_SET_CHILD_SUBREAPER) failed\n")
        return 2
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    try:
        os.setpgid(pid, pid)        # also done by the child; whichever runs first wins
    except OSError:
        pass

    def forward(sig, _frame):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    status = 0
    while True:
        try:
            child, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if child == pid:
            status = os.waitstatus_to_exitcode(st)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
