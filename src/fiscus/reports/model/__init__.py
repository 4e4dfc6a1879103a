"""The pre-launch cost model: a workload spec (agents, task classes, workflows), simulated run by run."""

from fiscus.reports.model.result import ALERTS, GroupFigures, ModelResult, model_workload
from fiscus.reports.model.spec import WorkloadSpec, load_spec, parse_spec

__all__ = ["ALERTS", "GroupFigures", "ModelResult", "WorkloadSpec", "load_spec", "model_workload", "parse_spec"]
