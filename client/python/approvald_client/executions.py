"""The executor side of approvald_client: the worker loop behind ApprovalClient.executions() and
the ClaimedExecution it yields, whose lease a background thread extends while the caller works on
it. The ExecutionService calls themselves (claim, extend_lease, complete, fail) are methods of
ApprovalClient, in client.py.
"""

import threading
import time

import grpc

from .client import _seconds, error_info, struct_to_dict

_CLAIM_RETRY_FIRST = 0.5
_CLAIM_RETRY_MAX = 10
_ERROR_MAX_BYTES = 1000  # approvald takes up to 2000 bytes by default; exceptions can be huge
_COMPLETE_RETRY_PAUSES = (0.2, 0.5, 1)  # repeating a completion with the same token is safe


def is_lease_lost(rpc_error):
    """Whether a failed execution call was refused with FAILED_PRECONDITION / LEASE_LOST: its
    lease token is no longer the current one (stop working on that execution)."""
    if rpc_error.code() != grpc.StatusCode.FAILED_PRECONDITION:
        return False
    info = error_info(rpc_error)
    return info is not None and info.reason == "LEASE_LOST"


def run_executions(client, action_types, lease, wait, stop):
    """The generator of ApprovalClient.executions() (see there) on that client."""
    backoff = _CLAIM_RETRY_FIRST
    while stop is None or not stop.is_set():
        try:
            claimed = client.claim(action_types, max_executions=1, lease=lease, wait=wait)
        except grpc.RpcError as err:
            if err.code() not in (grpc.StatusCode.UNAVAILABLE,
                                  grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            if stop is not None:
                stop.wait(backoff)
            else:
                time.sleep(backoff)
            backoff = min(backoff * 2, _CLAIM_RETRY_MAX)
            continue
        backoff = _CLAIM_RETRY_FIRST
        for execution in claimed:
            ex = ClaimedExecution(client, execution, lease)
            ex._start_extending()
            try:
                yield ex
            except BaseException:  # GeneratorExit: the loop was left (exception, break)
                ex._give_up("the worker stopped before completing it")
                raise
            ex._give_up("the worker's loop body ended without complete() or fail()")


def _error_text(error):
    """A failure's error as approvald takes it: not empty, no NUL, at most _ERROR_MAX_BYTES."""
    text = str(error).replace("\0", "") or "failed"
    return text.encode()[:_ERROR_MAX_BYTES].decode(errors="ignore")


class ClaimedExecution:
    """One execution that ApprovalClient.executions() claimed for the caller, under a lease
    that a background thread extends every lease/3 seconds until complete() or fail().

    execution: the Execution message as claimed; execution_id; attempt (from 1); max_attempts;
    idempotency_key, the same for every attempt: give it to the downstream API (an
    Idempotency-Key header) so that a retried attempt does not act twice; approval, the
    Approval as approved (requested_by, decided_by, votes, ...); action_data, its action_data
    as a dict (integral numbers as int).

    lease_lost: None, or the grpc.RpcError (FAILED_PRECONDITION / LEASE_LOST) with which an
    extension was refused: the lease expired and the execution may be another worker's by now,
    so stop working on it; extending stops, and complete() and fail() raise that error.
    outcome: the Execution answer of complete() or fail() once one succeeded.

    As a context manager (`with ex:`), an exception raised in the block fails the execution
    (retryable) with the exception's text and propagates; a block that ends without complete()
    or fail() fails it too. Those automatic failures do not raise if the call fails: the lease
    then expires and the execution is due again all the same.
    """

    def __init__(self, client, execution, lease=None):
        self.execution = execution
        self.execution_id = execution.execution_id
        self.attempt = execution.attempt
        self.max_attempts = execution.max_attempts
        self.idempotency_key = execution.idempotency_key
        self.approval = execution.approval
        self.action_data = struct_to_dict(execution.approval.action_data)
        self.lease_lost = None
        self.outcome = None
        self._client = client
        self._lease = lease
        self._ended = threading.Event()  # complete() or fail() was called: no more extensions

    def __repr__(self):
        return "<ClaimedExecution %s attempt %d of approval %s>" % (
            self.execution_id, self.attempt, self.approval.id)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            self._give_up("the worker ended without complete() or fail()")
        else:
            self._give_up("%s: %s" % (exc_type.__name__, exc))
        return False

    @property
    def ended(self):
        """Whether complete() or fail() was called (or the execution was given up)."""
        return self._ended.is_set()

    def complete(self, result=None):
        """Records that the action is done, with result (a JSON-like dict), and stops extending
        the lease. Returns the Execution. UNAVAILABLE and DEADLINE_EXCEEDED are retried a few
        times (the same lease token gets the same answer); then, or for another error, raises
        the grpc.RpcError. After a lost lease, raises lease_lost without calling."""
        self._ended.set()
        if self.lease_lost is not None:
            raise self.lease_lost
        for pause in _COMPLETE_RETRY_PAUSES + (None,):
            try:
                self.outcome = self._client.complete(self.execution, result)
                return self.outcome
            except grpc.RpcError as err:
                if pause is None or err.code() not in (grpc.StatusCode.UNAVAILABLE,
                                                       grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
            time.sleep(pause)

    def fail(self, error, retryable=True):
        """Records a failed attempt with error (its text), and stops extending the lease.
        retryable with attempts left: due again after the type's backoff; otherwise the approval
        ends FAILED. Returns the Execution. After a lost lease, raises lease_lost without
        calling."""
        self._ended.set()
        if self.lease_lost is not None:
            raise self.lease_lost
        self.outcome = self._client.fail(self.execution, _error_text(error),
                                         retryable=retryable)
        return self.outcome

    def _give_up(self, error):
        """Fails it (retryable) unless complete() or fail() was called or the lease is lost."""
        if self._ended.is_set():
            return
        self._ended.set()
        if self.lease_lost is not None:
            return
        try:
            self.outcome = self._client.fail(self.execution, _error_text(error),
                                             retryable=True)
        except grpc.RpcError:
            pass  # its lease expires and it is due again all the same

    def _start_extending(self):
        if self._lease is not None:
            lease = _seconds(self._lease)
        elif self.execution.HasField("lease_expire_time"):
            # The type's lease: what is left of it now (at least 1 s, clocks may differ).
            lease = max(1.0, self.execution.lease_expire_time.ToNanoseconds() / 1e9 - time.time())
        else:
            lease = 30.0
        every = lease / 3
        thread = threading.Thread(target=self._extend, args=(every,), daemon=True,
                                  name="lease-" + self.execution_id)
        thread.start()

    def _extend(self, every):
        # An extension that hangs is given up when the next one is due.
        timeout = min(self._client.timeout, max(every, 1.0))
        while not self._ended.wait(every):
            try:
                self._client.extend_lease(self.execution, lease=self._lease, timeout=timeout)
            except grpc.RpcError as err:
                if self._ended.is_set():
                    return  # complete() or fail() raced it: their answer is what counts
                if is_lease_lost(err):
                    self.lease_lost = err
                    return
                # Anything else (connection trouble): again at the next tick, the lease outlasts
                # two more.
