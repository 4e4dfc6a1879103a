"""Reports over the ledger: spend by any dimensions, as a table, JSON or a chargeback CSV."""

from fiscus.reports.period import ReportArgumentError, parse_by, parse_moment, parse_where
from fiscus.reports.spend import SpendReport, row_dict

__all__ = ["ReportArgumentError", "SpendReport", "parse_by", "parse_moment", "parse_where", "row_dict"]
