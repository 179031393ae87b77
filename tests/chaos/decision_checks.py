"""The SQL checks of tests/chaos/chaos.py: after the racing decisions through the faults, every
action ran exactly once, each approval's event log is its whole history in order, and no
approval was answered OK as decided by two calls."""

import collections

FINAL = {"approved", "rejected", "cancelled", "expired", "failed"}
DECIDES = {"Approve": "approved", "Reject": "rejected", "CancelApproval": "cancelled"}


def check(dsn, psql, load, printable):
    """The SQL checks. Returns [(name, offenders)]; printable(offender) -> str."""
    rows = {r[0]: (r[1], int(r[2]), r[3]) for r in psql(
        "SELECT id, status, version, action_type FROM approvald.approvals", dsn)}
    effects = collections.Counter(r[0] for r in psql("SELECT approval_id FROM effects", dsn))
    events = collections.defaultdict(list)
    xacts = collections.defaultdict(list)
    for approval_id, version, kind, xact in psql(
            "SELECT approval_id, version, type, xact_id FROM approvald.events"
            " ORDER BY approval_id, id", dsn):
        events[approval_id].append((int(version), kind))
        xacts[approval_id].append(xact)
    votes = collections.Counter(r[0] for r in psql("SELECT approval_id FROM approvald.votes", dsn))

    duplicate = ["%s: %d effects rows" % (a, n) for a, n in effects.items() if n > 1]
    lost = [a for a, (status, _, _) in rows.items() if status == "approved" and not effects[a]]
    orphan = ["%s (%s)" % (a, rows[a][0] if a in rows else "no approval")
              for a in effects if a not in rows or rows[a][0] != "approved"]

    # The log of each approval, two ways. In version order it must be the whole history: one
    # event per version 1..row version, `created` first, the newest matching the status (and an
    # approved quorum approval has its 2 votes). In log order (event id, the order in which
    # WatchApprovals delivers) the versions must strictly increase, so that the last event a
    # watcher gets is the approval's state.
    inconsistent, unordered = [], []
    for a, (status, version, action_type) in rows.items():
        log = events.get(a, [])
        by_version = sorted(log)
        expect_last = ("created", "voted") if status == "pending" else (status,)
        problems = []
        if [v for v, _ in by_version] != list(range(1, version + 1)):
            problems.append("event versions %s, row version %d" % (
                [v for v, _ in by_version], version))
        if by_version[:1] != [(1, "created")]:
            problems.append("first event %r, not (1, created)" % (by_version[:1],))
        if by_version and by_version[-1][1] not in expect_last:
            problems.append("newest event %s, status %s" % (by_version[-1][1], status))
        if action_type == "effect.quorum" and status == "approved" and votes[a] != 2:
            problems.append("approved with %d votes" % votes[a])
        if problems:
            inconsistent.append("%s: %s" % (a, "; ".join(problems)))
        versions = [v for v, _ in log]
        if any(x >= y for x, y in zip(versions, versions[1:])):
            unordered.append("%s (%s): in event id order versions %s, types %s, transactions %s;"
                             " last event %s v%d, row %s v%d" % (
                                 a, action_type, versions, [k for _, k in log], xacts[a],
                                 log[-1][1], log[-1][0], status, version))

    # What the load was told against what the database holds.
    contradicted = ["%s created, not in the database" % a for a in load.created if a not in rows]
    for ans in load.answers:
        status, version, _ = rows.get(ans.approval_id, (None, 0, None))
        if ans.status in FINAL and (ans.status, ans.version) != (status, version):
            contradicted.append("%s -> database %s v%d" % (printable(ans), status, version))
        elif ans.status == "pending" and ans.version > version:
            contradicted.append("%s -> database %s v%d" % (printable(ans), status, version))

    # Two calls answered OK as having decided one approval. One call = one (principal,
    # request_id) when it has a request_id (its replays answer the same); every call without one
    # is a call of its own. An OK answer says that the call decided the approval when its status
    # is the one its method makes (approved, rejected, cancelled) and, for a quorum Approve, its
    # decided_by is the caller. Not counted, as legitimate: pending answers (votes), and a vote
    # read back (a request_id replay, or after a lost COMMIT) once another call had decided the
    # approval: the vote was recorded, and the answer shows the approval as it is now.
    deciders = collections.defaultdict(dict)
    for i, ans in enumerate(load.answers):
        if ans.status != DECIDES[ans.method]:
            continue
        if (ans.action_type == "effect.quorum" and ans.method == "Approve" and
                ans.decided_by != ans.principal):
            continue
        key = (ans.principal, ans.request_id) if ans.request_id else ("call", i)
        deciders[ans.approval_id].setdefault(key, ans)
    twice = []
    for a, calls in deciders.items():
        if len(calls) > 1:
            twice.append("%s: %s" % (a, " | ".join(printable(x) for x in calls.values())))

    return [("duplicate effects (>1 row)", duplicate),
            ("lost effects (approved, 0 rows)", lost),
            ("effects without approved approval", orphan),
            ("events inconsistent with the row", inconsistent),
            ("versions out of order in the log", unordered),
            ("OK answers the database contradicts", contradicted),
            ("approvals answered OK to two calls", twice)]
