"""ApprovalClient: a thin wrapper around the generated approvals.v1 gRPC stubs.

Every call carries `authorization: Bearer <token>` and a deadline (the client's `timeout`, or the
`timeout` given to that call). Errors are the grpc.RpcError of the call; `error_info(err)` reads
the google.rpc.ErrorInfo (reason, domain, metadata) that approvald puts in the
`grpc-status-details-bin` trailer.

ApprovalService: create, get, list, approve, reject, cancel, list_action_types, watch, wait.
ExecutionService (executors of `handler: external` action types): claim, extend_lease, complete,
fail, and executions(), a worker loop that claims one execution at a time, keeps its lease
extended while the caller works on it and yields it as a ClaimedExecution (the loop, the lease
extension and ClaimedExecution are in executions.py):

    for ex in client.executions("refund.provider"):
        with ex:  # an exception in the block fails it (retryable) and propagates
            ex.complete(call_the_provider(ex.action_data, ex.idempotency_key))

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
from google.protobuf import json_format

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


def _enum_value(enum, prefix, value):
    if isinstance(value, int):
        return value
    name = str(value).upper()
    if not name.startswith(prefix):
        name = prefix + name
    return enum.Value(name)


def _status(value):
    """APPROVAL_STATUS_* from an enum number or a name: 'approved', 'APPROVED' or the full one."""
    return _enum_value(pb.ApprovalStatus, "APPROVAL_STATUS_", value)


def _execution_state(value):
    """EXECUTION_STATE_* from an enum number or a name: 'succeeded', 'QUEUED' or the full one."""
    return _enum_value(pb.ExecutionState, "EXECUTION_STATE_", value)


def _seconds(value):
    """Seconds (a number or a timedelta) as a float."""
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value)


def _set_duration(field, value):
    """Sets a google.protobuf.Duration field from seconds or a timedelta."""
    if isinstance(value, datetime.timedelta):
        field.FromTimedelta(value)
    else:
        field.FromNanoseconds(int(value * 1e9))


def _plain(value):
    # Struct numbers are doubles: give integral ones back as int (ids, amounts in cents).
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2 ** 53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def struct_to_dict(struct):
    """A google.protobuf.Struct (action_data, execution_result, an execution's result) as a dict
    of plain Python values; integral numbers come back as int, not float."""
    return _plain(json_format.MessageToDict(struct))


# Keepalive pings every 30 s, with or without data, so that a watch that waits for hours notices
# a dead connection (approvald accepts pings this often).
_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.http2.max_pings_without_data", 0),
)


def is_final(approval):
    """Whether an Approval is final: rejected, expired, cancelled, failed, or approved and
    executed (for an external type, once its execution has succeeded). An ApprovalStatus is
    accepted too, for types that run in the decision."""
    if isinstance(approval, int):
        return approval not in (pb.APPROVAL_STATUS_UNSPECIFIED, pb.APPROVAL_STATUS_PENDING)
    if approval.status in (pb.APPROVAL_STATUS_UNSPECIFIED, pb.APPROVAL_STATUS_PENDING):
        return False
    return approval.execution.state not in (pb.EXECUTION_STATE_QUEUED,
                                            pb.EXECUTION_STATE_RUNNING)


class ApprovalClient:
    """A client of approvals.v1.ApprovalService and approvals.v1.ExecutionService.

    target: "host:port". token: the bearer token. timeout: the deadline of each unary call, in
    seconds (watch() has none unless given one; a claim() that waits gets its wait on top).
    credentials: grpc.ChannelCredentials (e.g. grpc.ssl_channel_credentials(ca)) for TLS; None
    means plaintext.
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
        self.execution_stub = pb_grpc.ExecutionServiceStub(self.channel)

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
            _set_duration(req.ttl, ttl)
        if expire_time is not None:
            req.expire_time.FromDatetime(expire_time)
        return self._call(self.stub.CreateApproval, req, timeout)

    def get(self, approval_id, timeout=None):
        return self._call(self.stub.GetApproval, pb.GetApprovalRequest(id=approval_id), timeout)

    def list(self, statuses=(), action_type="", page_size=0, page_token="", requested_by="",
             decided_by="", execution_states=(), timeout=None):
        """One page, newest first: a ListApprovalsResponse (approvals, next_page_token).
        execution_states: only approvals whose external execution is in one of these states
        (enum values or names: 'queued', 'RUNNING', ...)."""
        req = pb.ListApprovalsRequest(statuses=[_status(s) for s in statuses],
                                      action_type=action_type, page_size=page_size,
                                      page_token=page_token, requested_by=requested_by,
                                      decided_by=decided_by,
                                      execution_states=[_execution_state(s)
                                                        for s in execution_states])
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
        if is_final(approval):
            return approval
        after, backoff = 0, 0.2
        while True:
            stream = self.watch(after_event_id=after, approval_ids=[approval.id],
                                timeout=remaining())
            try:
                for event in stream:
                    after, backoff = event.event_id, 0.2
                    if is_final(event.approval):
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

    # ExecutionService: the executors of action types with `handler: external`.

    def claim(self, action_types, max_executions=1, lease=None, wait=None, timeout=None):
        """Claims up to max_executions due executions of these action types (a name or a list
        of names), each under a new lease; returns the list of Execution (empty if none is due).

        lease: seconds or a timedelta; None is the type's `lease`. wait: long-poll up to that
        many seconds (at most 60) for one to become due; None answers at once. The call's
        deadline is wait plus timeout (the client's timeout unless given), so that a wait that
        ends empty is not a DEADLINE_EXCEEDED."""
        if isinstance(action_types, str):
            action_types = [action_types]
        req = pb.ClaimExecutionsRequest(action_types=list(action_types),
                                        max_executions=max_executions)
        if lease is not None:
            _set_duration(req.lease_duration, lease)
        deadline = self.timeout if timeout is None else timeout
        if wait is not None:
            _set_duration(req.wait, wait)
            deadline += _seconds(wait)
        return list(self._call(self.execution_stub.ClaimExecutions, req, deadline).executions)

    def extend_lease(self, execution, lease=None, timeout=None):
        """Moves the lease of a claimed Execution to now + lease (seconds or a timedelta; None is
        the type's `lease`). Returns the Execution. A lease that is no longer this claim's:
        FAILED_PRECONDITION / LEASE_LOST (see is_lease_lost)."""
        req = pb.ExtendLeaseRequest(execution_id=execution.execution_id,
                                    lease_token=execution.lease_token)
        if lease is not None:
            _set_duration(req.lease_duration, lease)
        return self._call(self.execution_stub.ExtendLease, req, timeout)

    def complete(self, execution, result=None, timeout=None):
        """Records that the claimed Execution's action is done, with result (a JSON-like dict).
        Returns the Execution. Repeating it with the same lease token answers the same; a stale
        token is FAILED_PRECONDITION / LEASE_LOST."""
        req = pb.CompleteExecutionRequest(execution_id=execution.execution_id,
                                          lease_token=execution.lease_token)
        if result:
            req.result.update(result)
        return self._call(self.execution_stub.CompleteExecution, req, timeout)

    def fail(self, execution, error, retryable=True, timeout=None):
        """Records a failed attempt of the claimed Execution. Retryable with attempts left: due
        again after the type's backoff; otherwise the approval ends FAILED with error. Returns
        the Execution."""
        req = pb.FailExecutionRequest(execution_id=execution.execution_id,
                                      lease_token=execution.lease_token, error=error,
                                      retryable=retryable)
        return self._call(self.execution_stub.FailExecution, req, timeout)

    def executions(self, action_types, lease=30, wait=20, stop=None):
        """A worker loop: yields the executions of these action types one at a time, as
        ClaimedExecution, for as long as the caller iterates (or until `stop`, a
        threading.Event, is set: it is checked between claims, so the loop ends at most `wait`
        seconds after it is set).

            for ex in client.executions("refund.provider"):
                with ex:
                    ex.complete(do_it(ex.action_data, ex.idempotency_key))

        Each is claimed with `lease` (seconds; None: the type's) and, while the caller works on
        it, a background thread extends the lease every lease/3 seconds, until complete() or
        fail(). Claims long-poll for `wait` seconds; UNAVAILABLE and DEADLINE_EXCEEDED from a
        claim are retried after a pause (0.5 s, doubling up to 10 s), other errors raise.

        An execution that the caller leaves without complete() or fail() is failed (retryable):
        - with `with ex:`, an exception raised in the block fails it with the exception's text,
          and the exception propagates (a block that ends normally fails it too);
        - without it, when the loop body ends or the loop is left (an exception, a break), the
          generator fails it with a generic error when it resumes or is closed: at once for a
          plain `for` over executions(), only later if the caller keeps the generator.
        Either way the attempt counts, and the execution is claimed again after the type's
        backoff while attempts are left."""
        # The loop and ClaimedExecution are in executions.py, which imports this module: imported
        # on first use, as a top-level import would be circular.
        from .executions import run_executions
        return run_executions(self, action_types, lease, wait, stop)
