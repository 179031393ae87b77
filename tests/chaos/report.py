"""Report printing shared by the chaos scripts (chaos.py, executions_chaos.py): the table of
checks and the offenders of those that failed, and the tails of the logs of a failed run."""

import os
import sys

SHOWN = 20  # offenders listed per failed check; the rest are counted


def print_checks(results, width):
    """Prints results ([(check name, offenders)]) as a "check / found / result" table, names in
    a column `width` wide, then the first offenders of each failed check. Returns the failed
    ones."""
    print("  %-*s %7s  %s" % (width, "check", "found", "result"))
    for name, offenders in results:
        print("  %-*s %7d  %s" % (width, name, len(offenders), "FAIL" if offenders else "ok"))
    failed = [(n, o) for n, o in results if o]
    for name, offenders in failed:
        print("%s:" % name)
        for o in offenders[:SHOWN]:
            print("    " + o)
        if len(offenders) > SHOWN:
            print("    ... and %d more" % (len(offenders) - SHOWN))
    return failed


def dump_logs(tmp):
    """The last 30 lines of each *.log in tmp to stderr (what the processes said before a
    failure)."""
    for path in sorted(p for p in os.listdir(tmp) if p.endswith(".log")):
        with open(os.path.join(tmp, path), errors="replace") as f:
            sys.stderr.write("---- %s (last 30 lines) ----\n%s" % (
                path, "".join(f.readlines()[-30:])))
