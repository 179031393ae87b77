"""Python client of approvald (approvals.v1.ApprovalService and ExecutionService).

    from approvald_client import ApprovalClient, error_info, pb

Run client/python/generate.sh first (or point APPROVALD_PY_GEN at its output): the generated
protobuf and gRPC modules are not committed. See client/python/README.md.
"""

from .client import (ApprovalClient, error_details_pb2, error_info, is_final, pb, pb_grpc,
                     status_details, status_pb2, struct_to_dict)
from .executions import ClaimedExecution, is_lease_lost

__all__ = ["ApprovalClient", "ClaimedExecution", "error_info", "is_final", "is_lease_lost",
           "status_details", "struct_to_dict", "pb", "pb_grpc", "status_pb2", "error_details_pb2"]
