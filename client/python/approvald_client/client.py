"""ApprovalClient: a thin wrapper around the generated approvals.v1 gRPC stub.

Every call carries `authorization: Bearer <token>` and a deadline (the client's `timeout`, or the
`timeout` given to that call). Errors are the grpc.RpcError of the call; `error_info(err)` reads
the google.rpc.ErrorInfo (reason, domain, metadata) that approvald puts in the
`grpc-status-details-bin` trailer.

The generated modules (approvals.v1.approvals_pb2 and _grpc, google.rpc.status_pb2 and
error_details_pb2) are not part of the package: make them with client/python/generate.sh. They
are found on sys.path; a directory named by APPROVALD_PY_GEN is put first on sys.path, and
client/python/gen (generate.sh's default output) is tried last.
"""

import datetime
import os
import sys
import time

import grpc

GEN_ENV = "APPROVALD_PY_GEN"
_DEFAULT_GEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gen")


def _import_generated():
    gen = os.environ.get(GEN_ENV)
    if gen and os.path.abspath(gen) not in [os.path.abspath(p) for p in sys.path]:
        sys.path.insert(0, os.path.abspath(gen))
    try:
        from approvals.v1 import approvals_pb2, approvals_pb2_grpc
        from google.rpc import error_details_pb2, status_pb2
    except ImportError as first:
        if not os.path.isdir(_DEFAULT_GEN) or _DEFAULT_GEN in sys.path:
            raise ImportError(
                "approvald_client needs the generated approvals.v1 modules: run "
                "client/python/generate.sh [DIR], then put DIR on sys.path or set %s=DIR "
                "(%s)" % (GEN_ENV, first)) from first
        sys.path.append(_DEFAULT_GEN)
        from approvals.v1 import approvals_pb2, approvals_pb2_grpc
        from google.rpc import error_details_pb2, status_pb2
    return approvals_pb2, approvals_pb2_grpc, status_pb2, error_details_pb2


pb, pb_grpc, status_pb2, error_details_pb2 = _import_generated()

_DETAILS_KEY = "grpc-status-details-bin"


def status_details(rpc_error):
    """The google.rpc.Status of a failed call (from its `grpc-status-details-bin` trailer), or
    None if the error carries none."""
    trailing = getattr(rpc_error, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    for key, value in metadata or ():
        if key == _DETAILS_KEY:
            return status_pb2.Status.FromString(value)
    return None


def error_info(rpc_error):
    """The google.rpc.ErrorInfo (reason, domain, metadata) of a failed call, or None.

    `rpc_error` is the grpc.RpcError that a call raised (a streaming call's error too)."""
    status = status_details(rpc_error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def _status(value):
    """APPROVAL_STATUS_* from an enum number or a name: 'approved', 'APPROVED' or the full one."""
    if isinstance(value, int):
        return value
    name = str(value).upper()
    if not name.startswith("APPROVAL_STATUS_"):
        name = "APPROVAL_STATUS_" + name
    return pb.ApprovalStatus.Value(name)


# Keepalive pings every 30 s, with or without data, so that a watch that waits for hours notices
# a dead connection (approvald accepts pings this often).
_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.http2.max_pings_without_data", 0),
)

def is_final(status):
    """Whether an ApprovalStatus is final (approved, rejected, expired, cancelled, failed)."""
    return status not in (pb.APPROVAL_STATUS_UNSPECIFIED, pb.APPROVAL_STATUS_PENDING)


class ApprovalClient:
    """A client of approvals.v1.ApprovalService.

    target: "host:port". token: the bearer token. timeout: the deadline of each unary call, in
    seconds (watch() has none unless given one). credentials: grpc.ChannelCredentials (e.g.
    grpc.ssl_channel_credentials(ca)) for TLS; None means plaintext.
    """

    def __init__(self, target, token, timeout=10, credentials=None):
        self.target = target
        self.timeout = timeout
        self._metadata = (("authorization", "Bearer " + token),)
        if credentials is None:
            self.channel = grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
        else:
            self.channel = grpc.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
        self.stub = pb_grpc.ApprovalServiceStub(self.channel)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request, timeout):
        return method(request, metadata=self._metadata,
                      timeout=self.timeout if timeout is None else timeout)

    def create(self, action_type, action_data=None, summary="", ttl=None, expire_time=None,
               idempotency_key="", timeout=None):
        """Proposes an action. action_data: a JSON-like dict. ttl: seconds or a timedelta;
        expire_time: a datetime (give at most one of them)."""
        req = pb.CreateApprovalRequest(action_type=action_type, summary=summary,
                                       idempotency_key=idempotency_key)
        if action_data:
            req.action_data.update(action_data)
        if ttl is not None and expire_time is not None:
            raise ValueError("give ttl or expire_time, not both")
        if ttl is not None:
            if isinstance(ttl, datetime.timedelta):
                req.ttl.FromTimedelta(ttl)
            else:
                req.ttl.FromNanoseconds(int(ttl * 1e9))
        if expire_time is not None:
            req.expire_time.FromDatetime(expire_time)
        return self._call(self.stub.CreateApproval, req, timeout)

    def get(self, approval_id, timeout=None):
        return self._call(self.stub.GetApproval, pb.GetApprovalRequest(id=approval_id), timeout)

    def list(self, statuses=(), action_type="", page_size=0, page_token="", requested_by="",
             decided_by="", timeout=None):
        """One page, newest first: a ListApprovalsResponse (approvals, next_page_token)."""
        req = pb.ListApprovalsRequest(statuses=[_status(s) for s in statuses],
                                      action_type=action_type, page_size=page_size,
                                      page_token=page_token, requested_by=requested_by,
                                      decided_by=decided_by)
        return self._call(self.stub.ListApprovals, req, timeout)

    def approve(self, approval_id, comment="", expected_version=0, request_id="", timeout=None):
        req = pb.ApproveRequest(id=approval_id, comment=comment,
                                expected_version=expected_version, request_id=request_id)
        return self._call(self.stub.Approve, req, timeout)

    def reject(self, approval_id, reason, expected_version=0, request_id="", timeout=None):
        req = pb.RejectRequest(id=approval_id, reason=reason, expected_version=expected_version,
                               request_id=request_id)
        return self._call(self.stub.Reject, req, timeout)

    def cancel(self, approval_id, reason="", expected_version=0, request_id="", timeout=None):
        req = pb.CancelApprovalRequest(id=approval_id, reason=reason,
                                       expected_version=expected_version, request_id=request_id)
        return self._call(self.stub.CancelApproval, req, timeout)

    def list_action_types(self, timeout=None):
        """The configured action types (a list of ActionType)."""
        resp = self._call(self.stub.ListActionTypes, pb.ListActionTypesRequest(), timeout)
        return list(resp.action_types)

    def watch(self, after_event_id=0, statuses=(), action_type="", approval_ids=(),
              requested_by="", timeout=None):
        """A WatchApprovals stream: iterate it for ApprovalEvents, call .cancel() to stop.

        No deadline unless `timeout` (seconds) is given: the stream stays open while events
        come or not (keepalive pings watch the connection). When the server ends the stream
        (it restarts, or the watcher fell too far behind), iterating raises grpc.RpcError:
        resume with after_event_id set to the last event_id handled. With approval_ids and
        after_event_id 0, the stream starts with every event those approvals already have."""
        req = pb.WatchApprovalsRequest(statuses=[_status(s) for s in statuses],
                                       action_type=action_type, after_event_id=after_event_id,
                                       approval_ids=list(approval_ids),
                                       requested_by=requested_by)
        return self.stub.WatchApprovals(req, metadata=self._metadata, timeout=timeout)

    def wait(self, approval_id, timeout=None):
        """Blocks until the approval is final and returns it (an Approval: check .status).

        timeout: seconds, or None to wait as long as it takes; when it passes, raises
        TimeoutError. A dropped stream is resumed where it stopped. Errors that waiting cannot
        fix (NOT_FOUND, UNAUTHENTICATED, ...) raise grpc.RpcError."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining():
            if deadline is None:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("approval %s is still pending" % approval_id)
            return left

        left = remaining()
        approval = self.get(approval_id, timeout=self.timeout if left is None
                            else min(self.timeout, left))
        if is_final(approval.status):
            return approval
        after, backoff = 0, 0.2
        while True:
            stream = self.watch(after_event_id=after, approval_ids=[approval.id],
                                timeout=remaining())
            try:
                for event in stream:
                    after, backoff = event.event_id, 0.2
                    if is_final(event.approval.status):
                        stream.cancel()
                        return event.approval
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise TimeoutError("approval %s is still pending" % approval_id) from err
                if err.code() not in (grpc.StatusCode.UNAVAILABLE,
                                      grpc.StatusCode.RESOURCE_EXHAUSTED,
                                      grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                    raise
            left = remaining()
            time.sleep(backoff if left is None else min(backoff, left))
            backoff = min(backoff * 2, 5)
