#!/usr/bin/python3
"""approvald_client example: create a noop approval, approve it, approve it again and read the
error's ErrorInfo reason.

usage: example.py TARGET REQUESTER_TOKEN APPROVER_TOKEN
  e.g. client/python/generate.sh && client/python/example.py 127.0.0.1:50051 "$AGENT" "$ALICE"
Exit code 0 only if everything went as expected: the second approve fails with
FAILED_PRECONDITION / ALREADY_PROCESSED.
"""

import os
import sys

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from approvald_client import ApprovalClient, error_info, pb  # noqa: E402


def status_name(status):
    return pb.ApprovalStatus.Name(status).replace("APPROVAL_STATUS_", "")


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target, requester_token, approver_token = argv[1:4]
    with ApprovalClient(target, requester_token) as agent, \
            ApprovalClient(target, approver_token) as approver:
        try:
            created = agent.create("noop", {"note": "python client example"},
                                   summary="example from approvald_client", ttl=3600)
            print("created:  %s %s v%d by %s" % (created.id, status_name(created.status),
                                                 created.version, created.requested_by))
            approved = approver.approve(created.id, comment="looks fine")
            print("approved: %s %s v%d by %s" % (approved.id, status_name(approved.status),
                                                 approved.version, approved.decided_by))
        except grpc.RpcError as err:
            info = error_info(err)
            print("error: %s %s: %s" % (err.code().name, info.reason if info else "-",
                                        err.details()), file=sys.stderr)
            return 1
        if approved.status != pb.APPROVAL_STATUS_APPROVED:
            print("error: expected APPROVED, got %s" % status_name(approved.status),
                  file=sys.stderr)
            return 1
        try:
            approver.approve(created.id)
        except grpc.RpcError as err:
            info = error_info(err)
            if info is None:
                print("error: %s without ErrorInfo: %s" % (err.code().name, err.details()),
                      file=sys.stderr)
                return 1
            print("again:    %s %s (domain %s, status %s, version %s)" % (
                err.code().name, info.reason, info.domain, info.metadata.get("status", "-"),
                info.metadata.get("version", "-")))
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION and \
                    info.reason == "ALREADY_PROCESSED":
                return 0
            print("error: expected FAILED_PRECONDITION ALREADY_PROCESSED", file=sys.stderr)
            return 1
        print("error: the second approve succeeded", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
