"""The audit trail over the ledger: `verify` names every row edited, deleted or inserted behind the ledger's
back; `audit_records` is the export an auditor reads (who, model, tokens, cost, decision, override, policy)."""

from fiscus.audit.export import FIELDS, audit_records
from fiscus.audit.verify import Finding, FindingKind, Verification, verify

__all__ = ["FIELDS", "Finding", "FindingKind", "Verification", "audit_records", "verify"]
