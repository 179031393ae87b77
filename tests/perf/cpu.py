"""CPU time of the processes a perf run compares: PostgreSQL's whole tree, approvald, the load
generator. Read from /proc, so a figure is the processes' own accounting, not a sample."""

import os
import re
import resource
import time

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_cpu(pid):
    """CPU seconds used so far; still readable right after the process exited (a zombie)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_stat(pid):
    """CPU seconds, RSS and peak RSS (MiB) of a running process."""
    status = open("/proc/%d/status" % pid).read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024.0
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024.0
    return proc_cpu(pid), rss, hwm


def _children(ppid):
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = _stat_fields(int(name))
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == ppid:
            kids.append((int(name), (int(fields[11]) + int(fields[12])) / TICK))
    return kids


class PgTree:
    """PostgreSQL's CPU: the postmaster, its live children (backends, WAL writer, checkpointer)
    and, through the postmaster's cumulative child times, every child that has exited (the
    backends of a pgbench run that has ended)."""

    def __init__(self, data_dir):
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            self.pid = int(f.readline())

    def children(self):
        return len(_children(self.pid))

    def cpu(self):
        fields = _stat_fields(self.pid)
        own = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK
        return own + sum(cpu for _, cpu in _children(self.pid))

    def settle(self, children, timeout=10):
        """Waits until the postmaster has reaped the backends of clients that left."""
        end = time.monotonic() + timeout
        while self.children() > children and time.monotonic() < end:
            time.sleep(0.05)


def waited_children_cpu():
    """CPU seconds of this process's children that have been waited for (subprocess.run's)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
