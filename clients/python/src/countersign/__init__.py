"""Countersign client: an agent asks a Countersign gateway before it acts, and waits for a human's approval."""

from .approval import Approval, ensure_approved, requires_approval
from .client import Client
from .draft import DATA_CLASSES, Draft, build_draft
from .errors import CountersignError, Denied, Expired, GatewayError, NotApproved, Withdrawn
from .results import Decision, State, Status, Submission

__all__ = [
    "Approval",
    "Client",
    "CountersignError",
    "DATA_CLASSES",
    "Decision",
    "Denied",
    "Draft",
    "Expired",
    "GatewayError",
    "NotApproved",
    "State",
    "Status",
    "Submission",
    "Withdrawn",
    "build_draft",
    "ensure_approved",
    "requires_approval",
]
