"""What an evaluation answers (SPEC §6) and what the usage endpoint shows (SPEC §3)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from core.identifiers import ReportingDay

#: The version of the contract's counting rules that evaluations follow (SPEC §6 v2).
RULES_VERSION = "3"
#: What identifies "the same situation" of each kind of finding, besides kind and customer.
_IDENTITY = {
    "overuse": ("metric", "started_on"),
    "attestation_overdue": ("quarter",),
    "instance_silent": ("instance_id",),
    "instance_cloned": ("instance_id",),
}


def finding_id(finding: dict[str, Any]) -> str:
    """A finding's id: the same for the same situation in every run (SPEC §6 v2), from its
    kind, customer and, by kind, metric and start, quarter, or instance."""
    parts = [finding["kind"], finding["customer_id"]]
    parts += [str(finding[name]) for name in _IDENTITY.get(finding["kind"], ())]
    return "f_" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class _Finding(BaseModel):
    """What every kind of finding carries: its stable id."""

    finding_id: str

    @model_validator(mode="before")
    @classmethod
    def _identified(cls, data: Any) -> Any:
        # Findings kept before version 2 had no id; the id is derived, so it can be given them.
        if isinstance(data, dict) and "finding_id" not in data:
            data = {**data, "finding_id": finding_id(data)}
        return data


#: A metric's daily ``(day, usage, entitlement)``, for charts; None is no usage or unlimited.
Series = list[tuple[date, int | None, int | None]]


def time_left(days_left: int) -> str:
    """The time to the deadline as a person reads it: ``23 days``, or ``14 days overdue``."""
    if days_left < 0:
        return f"{-days_left} day{'s' if days_left != -1 else ''} overdue"
    return f"{days_left} day{'s' if days_left != 1 else ''}"


def overage_share(overage_pct: float | None) -> str:
    """How far over, as a person reads it: ``+16.0%``, or ``entitled 0`` (not licensed)."""
    return "entitled 0" if overage_pct is None else f"+{overage_pct}%"


class OveruseFinding(_Finding):
    """An over-use episode of one metric of one customer."""

    kind: Literal["overuse"] = "overuse"
    customer_id: str
    account_manager: str
    metric: str
    status: Literal["in_window", "overdue", "regularized"]
    started_on: date
    deadline: date
    days_left: int
    entitled: int
    peak_usage: int
    overage: int
    overage_pct: float | None
    material: bool
    ended_on: date | None
    resolution: Literal["capacity_purchased", "usage_reduced"] | None
    late: bool | None


class TelemetryMissingFinding(_Finding):
    """A customer under an order whose instances stopped phoning home."""

    kind: Literal["telemetry_missing"] = "telemetry_missing"
    customer_id: str
    account_manager: str
    last_report_on: date | None


class InstanceClonedFinding(_Finding):
    """An instance whose sequence went backwards at least twice in 7 days: two installations
    share one ``instance_id`` (a cloned virtual machine), so one of them is not counted."""

    kind: Literal["instance_cloned"] = "instance_cloned"
    customer_id: str
    account_manager: str
    instance_id: str
    regressions: int
    first_regression_at: datetime


class InstanceSilentFinding(_Finding):
    """An instance silent for 7 to 30 days while another of its customer's reports: a partial
    outage, a blocked phone-home, or a decommission to record as a retirement."""

    kind: Literal["instance_silent"] = "instance_silent"
    customer_id: str
    account_manager: str
    instance_id: str
    environment: str
    last_report_on: date


class AttestationOverdueFinding(_Finding):
    """An air-gapped customer whose quarterly attestation is late."""

    kind: Literal["attestation_overdue"] = "attestation_overdue"
    customer_id: str
    account_manager: str
    quarter: str
    due_on: date


class NoActiveSubscriptionFinding(_Finding):
    """A customer whose instances report on days no order covers."""

    kind: Literal["no_active_subscription"] = "no_active_subscription"
    customer_id: str
    account_manager: str
    last_order_end: date | None
    instances: int


Finding = Annotated[
    OveruseFinding
    | TelemetryMissingFinding
    | InstanceClonedFinding
    | InstanceSilentFinding
    | AttestationOverdueFinding
    | NoActiveSubscriptionFinding,
    Field(discriminator="kind"),
]


class Evaluation(BaseModel):
    """One immutable evaluation run: the findings as of a day, the most urgent first."""

    evaluation_id: str
    as_of: date
    evaluated_at: datetime
    rules_version: str = Field(description="The contract's counting rules it followed.")
    customers_version: int | None = Field(
        description="The latest audit-log entry when it ran: the order forms it used."
    )
    known_at: datetime | None = Field(
        None,
        description="The instant whose knowledge it judged: every report, order "
        "form, retirement and attestation stored by then, and nothing after. Its evidence is "
        "read as known at this instant. None on runs kept before version 3.",
    )
    parameters: dict[str, int] | None = Field(
        None,
        description="What it judged with: activity_days, relapse_days, "
        "silence_days, regularization_days, material_pct; none on runs kept before rules 3.",
    )
    findings: list[Finding]


class EvaluationRun(BaseModel):
    """A run as ``GET /v1/evaluations`` lists it."""

    evaluation_id: str
    as_of: date
    evaluated_at: datetime
    rules_version: str
    customers_version: int | None
    known_at: datetime | None = None
    findings: int


class EvaluationRequest(BaseModel):
    """``POST /v1/evaluations``."""

    model_config = ConfigDict(extra="forbid")

    as_of: ReportingDay | None = None


class EpisodeHistory(BaseModel):
    """One episode as the evaluations saw it: opened, first reported, ended."""

    customer_id: str
    metric: str
    started_on: date
    deadline: date
    first_reported_as_of: date
    first_reported_at: datetime
    last_evaluated_as_of: date
    status: str
    peak_usage: int
    entitled: int
    material: bool
    ended_on: date | None
    resolution: str | None


class UsageDay(BaseModel):
    """One day of a customer's usage and entitlement (SPEC §5 v3)."""

    day: date
    usage: dict[str, int | None]
    entitled: dict[str, int | None] = Field(
        description="Per metric; null is unlimited when `subscription` is true, and no licence "
        "at all when it is false."
    )
    subscription: bool = Field(description="Whether an order form of the customer is active.")


class CustomerUsage(BaseModel):
    """``GET /v1/customers/{id}/usage``."""

    customer_id: str
    from_: date = Field(serialization_alias="from")
    to: date
    days: list[UsageDay]


class EvidenceInstance(BaseModel):
    """One instance counted on one day, and what it contributed."""

    instance_id: str
    environment: str
    value: int
    from_day: date
    reports: int
    report_ids: list[str]


class EvidenceDay(BaseModel):
    """One day of an over-use finding's evidence."""

    date: date
    usage: int | None
    entitled: int | None
    over: bool
    subscription: bool
    counting: str
    instances: list[EvidenceInstance]


class Evidence(BaseModel):
    """Where a finding comes from: the envelope, then by kind the days (over-use), the
    instances (silence, subscription), the reports (clones) or the quarter (attestations)."""

    finding_id: str
    kind: str
    customer_id: str
    as_of: date
    evaluation_id: str
    known_at: datetime = Field(
        description="What this evidence is as known at: its run's instant. The "
        "same answer every time, whatever arrived or changed afterwards."
    )
    rules_version: str
    activity_days: int
    finding: dict[str, Any]
    metric: str | None = None
    counting: str | None = None
    days: list[EvidenceDay] | None = None
    instances: list[dict[str, Any]] | None = None
    reports: list[dict[str, Any]] | None = None
    orders: list[dict[str, Any]] | None = None
    attestations: list[str] | None = None


#: The longest working note: a few sentences, not a file.
NOTE_MAX_CHARS = 2000


class NewNote(BaseModel):
    """``POST /v1/findings/{id}/notes``: what staff learnt or did about a finding."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[
        str,
        StringConstraints(min_length=1, max_length=NOTE_MAX_CHARS, strip_whitespace=True),
        Field(description="Plain text, such as 'called Jane 12-03, PO expected'."),
    ]


class FindingNote(BaseModel):
    """A working note on a finding, carried across runs by its ``finding_id``."""

    note_id: int
    finding_id: str
    customer_id: str
    written_at: datetime
    author: str = Field(description="The staff token's name that wrote it.")
    text: str
