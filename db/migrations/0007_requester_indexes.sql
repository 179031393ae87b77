-- ListApprovals filtered by requester or decider, newest first, without a scan of every row.
CREATE INDEX ai_approvals_requester_newest ON ai_approvals (requested_by, created_at DESC, id DESC);
CREATE INDEX ai_approvals_decider_newest ON ai_approvals (decided_by, created_at DESC, id DESC)
    WHERE decided_by IS NOT NULL;
