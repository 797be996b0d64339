"""The weekly email: sections, an HTML and a plain-text part, charts inline, a CSV attached."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from analytics.schemas import (
    AttestationOverdueFinding,
    Finding,
    FindingNote,
    InstanceClonedFinding,
    InstanceSilentFinding,
    NoActiveSubscriptionFinding,
    OveruseFinding,
    TelemetryMissingFinding,
    overage_share,
    time_left,
)
from core.templates import environment
from core.wording import counted

_templates = environment("scheduler")

#: Every field of every kind of finding, in the order the models declare them.
CSV_COLUMNS = tuple(
    dict.fromkeys(
        name
        for model in (
            OveruseFinding,
            TelemetryMissingFinding,
            InstanceClonedFinding,
            InstanceSilentFinding,
            AttestationOverdueFinding,
            NoActiveSubscriptionFinding,
        )
        for name in model.model_fields
    )
)


def _overuse_cells(finding: OveruseFinding) -> list[str]:
    return [
        finding.metric,
        f"{finding.peak_usage} / {finding.entitled}",
        overage_share(finding.overage_pct) + (" material" if finding.material else ""),
        str(finding.started_on),
        str(finding.deadline),
        time_left(finding.days_left),
    ]


def _regularized_cells(finding: OveruseFinding) -> list[str]:
    resolution = str(finding.resolution).replace("_", " ")
    return [
        finding.metric,
        f"{finding.peak_usage} / {finding.entitled}",
        str(finding.started_on),
        str(finding.ended_on),
        resolution + (" (late)" if finding.late else ""),
    ]


def _utc_minute(moment: datetime) -> str:
    """A finding's instant as a reader wants it: ``2026-11-22 00:00 UTC``."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class SectionSpec:
    """One section of the email, and of the console's findings: the findings of one kind (and,
    for over-use, one status), and how to show them."""

    title: str
    hint: str
    colour: str
    kind: type[Finding]
    columns: tuple[str, ...]
    #: The cells of a finding of ``kind``.
    cells: Callable[[Any], list[str]]
    status: str | None = None

    def matches(self, finding: Finding) -> bool:
        """Whether the finding belongs in this section."""
        return isinstance(finding, self.kind) and (
            self.status is None or getattr(finding, "status", None) == self.status
        )


_OVERUSE_COLUMNS = ("Metric", "Peak / entitled", "Over by", "Since", "Deadline", "Time left")


def _telemetry_cells(finding: TelemetryMissingFinding) -> list[str]:
    return [str(finding.last_report_on or "never")]


def _cloned_cells(finding: InstanceClonedFinding) -> list[str]:
    return [finding.instance_id, str(finding.regressions), _utc_minute(finding.first_regression_at)]


def _silent_cells(finding: InstanceSilentFinding) -> list[str]:
    return [finding.instance_id, finding.environment, str(finding.last_report_on)]


def _attestation_cells(finding: AttestationOverdueFinding) -> list[str]:
    return [finding.quarter, str(finding.due_on)]


def _lapsed_cells(finding: NoActiveSubscriptionFinding) -> list[str]:
    return [str(finding.instances), str(finding.last_order_end or "never")]


SECTIONS = (
    SectionSpec(
        "Overdue",
        "Past the 30 days to regularize: the licence now lets you give the customer notice.",
        "#c0392b",
        OveruseFinding,
        _OVERUSE_COLUMNS,
        _overuse_cells,
        status="overdue",
    ),
    SectionSpec(
        "In regularization window",
        "Over-use within its 30 days; soonest deadline first.",
        "#e67e22",
        OveruseFinding,
        _OVERUSE_COLUMNS,
        _overuse_cells,
        status="in_window",
    ),
    SectionSpec(
        "Regularized this week",
        "Resolved in the last 7 days; nothing to do.",
        "#27ae60",
        OveruseFinding,
        ("Metric", "Peak / entitled", "Since", "Ended", "How"),
        _regularized_cells,
        status="regularized",
    ),
    SectionSpec(
        "Telemetry missing",
        "Under an order but silent for 7 days: check the installation can phone home.",
        "#8e44ad",
        TelemetryMissingFinding,
        ("Last report",),
        _telemetry_cells,
    ),
    SectionSpec(
        "Instances cloned",
        "Two installations share one instance_id, so only one of them is counted: ask the "
        "customer to give the copy an id of its own.",
        "#16a085",
        InstanceClonedFinding,
        ("Instance", "Sequence regressions", "First regression"),
        _cloned_cells,
    ),
    SectionSpec(
        "Instances silent",
        "One instance stopped while the others report: fix its phone-home, or retire it if "
        "it was decommissioned.",
        "#1abc9c",
        InstanceSilentFinding,
        ("Instance", "Environment", "Last report"),
        _silent_cells,
    ),
    SectionSpec(
        "Attestation overdue",
        "Air-gapped: the signed quarterly attestation has not arrived.",
        "#2980b9",
        AttestationOverdueFinding,
        ("Quarter", "Due on"),
        _attestation_cells,
    ),
    SectionSpec(
        "No active subscription",
        "Instances report on days no order covers: renewal or shutdown needed.",
        "#7f8c8d",
        NoActiveSubscriptionFinding,
        ("Instances", "Last order ended"),
        _lapsed_cells,
    ),
)


def describe(finding: Finding) -> tuple[str, str]:
    """A finding in words, as the email's text lists it: its section's title, and each of its
    columns with the finding's cell (``Metric users; Peak / entitled 58 / 50; ...``)."""
    spec = next(spec for spec in SECTIONS if spec.matches(finding))
    cells = spec.cells(finding)
    return spec.title, "; ".join(f"{c} {cell}" for c, cell in zip(spec.columns, cells, strict=True))


def needs_action(finding: Finding) -> bool:
    """Everything but a regularized episode asks the account manager to act."""
    return not (isinstance(finding, OveruseFinding) and finding.status == "regularized")


def accounts_needing_action(findings: Sequence[Finding]) -> int:
    """How many distinct customers have a finding to act on."""
    return len({f.customer_id for f in findings if needs_action(f)})


def subject_line(*, iso_week: str, needing_action: int, digest: bool) -> str:
    """Names the ISO week and how many accounts need action."""
    prefix = "[digest] " if digest else ""
    if needing_action == 0:
        return f"{prefix}Licence compliance {iso_week}: all clear"
    return f"{prefix}Licence compliance {iso_week}: {_accounts_need(needing_action)} action"


def _accounts_need(count: int) -> str:
    """``1 account needs`` or ``3 accounts need``: the subject's words, and both bodies'."""
    return counted(count, "account") + (" needs" if count == 1 else " need")


#: What makes a spreadsheet read a cell as a formula when it comes first (OWASP's list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: text that a spreadsheet would run as a formula
    (``=1+2@vendor.example``, ``-atk``) gets a leading ``'``, as OWASP advises and as Excel,
    LibreOffice and Google Sheets read it; numbers stay numbers."""
    if isinstance(value, bool):  # as the statement's CSV writes them
        return str(value).lower()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def findings_csv(findings: Sequence[Finding]) -> str:
    """One row per finding, every column of every kind; no cell runs as a formula."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for finding in findings:
        cells = finding.model_dump(mode="json")
        writer.writerow(
            {k: "" if cells.get(k) is None else spreadsheet_cell(cells.get(k)) for k in CSV_COLUMNS}
        )
    return buffer.getvalue()


@dataclass
class _Row:
    finding: Finding
    cells: list[str]
    customer: str
    chart_cid: str | None = None
    #: The finding's evidence in the console, when the console's address is configured.
    evidence_url: str | None = None
    #: Staff's newest working note on the finding, in words ("2026-12-03, adam: ...").
    note: str | None = None
    #: Where the account manager sends the customer a link to its own view, for an over-use
    #: to act on, when the console's address is configured.
    share_url: str | None = None


@dataclass
class _Section:
    title: str
    hint: str
    colour: str
    columns: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)


def _sections(
    findings: Sequence[Finding],
    *,
    charts: Mapping[tuple[str, str], bytes],
    names: Mapping[str, str],
    evidence: Callable[[str], str] | None,
    share: Callable[[str], str] | None,
    notes: Mapping[str, FindingNote],
) -> tuple[list[_Section], list[tuple[str, bytes]]]:
    """The email's sections with their rows, and the inline charts they show (Content-ID,
    PNG). ``evidence`` gives the address of a finding's evidence from its id; ``share``, of
    the console's place to send a customer a link to its own view, from the customer's id."""
    sections: list[_Section] = []
    images: list[tuple[str, bytes]] = []
    for spec in SECTIONS:
        chosen = [f for f in findings if spec.matches(f)]
        if not chosen:
            continue
        section = _Section(spec.title, spec.hint, spec.colour, spec.columns, chosen)
        for finding in chosen:
            customer_id = finding.customer_id
            label = f"{names.get(customer_id, customer_id)} ({customer_id})"
            row = _Row(finding, spec.cells(finding), label)
            if evidence is not None:
                row.evidence_url = evidence(finding.finding_id)
            if share is not None and isinstance(finding, OveruseFinding) and needs_action(finding):
                row.share_url = share(customer_id)
            note = notes.get(finding.finding_id)
            if note is not None:
                row.note = f"{note.written_at:%Y-%m-%d}, {note.author}: {note.text}"
            chart = (
                charts.get((customer_id, finding.metric))
                if isinstance(finding, OveruseFinding)
                else None
            )
            if chart is not None:
                cid = make_msgid(domain="statreport.invalid")
                row.chart_cid = cid[1:-1]
                images.append((cid, chart))
            section.rows.append(row)
        sections.append(section)
    return sections, images


def build_weekly_email(
    *,
    sender: str,
    recipient: str,
    iso_week: str,
    as_of: str,
    findings: Sequence[Finding],
    accounts: int,
    charts: Mapping[tuple[str, str], bytes],
    names: Mapping[str, str],
    digest: bool = False,
    console_url: str | None = None,
    evaluation_id: str | None = None,
    notes: Mapping[str, FindingNote] | None = None,
) -> EmailMessage:
    """The whole message: text, HTML with inline charts, and the CSV. Customers are named by
    ``names`` (their documents' names), with the id beside. With ``console_url``, each finding
    links to its evidence in the console: in the run ``evaluation_id`` the email shows, as
    known at it, or (a dry run keeps no run) in the newest run as of ``as_of``. ``notes`` are
    the newest working note of each finding that has one, shown beside it."""
    pinned = f"evaluation_id={evaluation_id}" if evaluation_id is not None else f"as_of={as_of}"
    base = (console_url or "").rstrip("/")

    def evidence(finding_id: str) -> str:
        return f"{base}/ui/findings/{finding_id}?{pinned}"

    def share(customer_id: str) -> str:
        return f"{base}/ui/customers/{customer_id}#view"

    sections, images = _sections(
        findings,
        charts=charts,
        names=names,
        evidence=evidence if console_url else None,
        share=share if console_url else None,
        notes=notes or {},
    )
    needing = accounts_needing_action(findings)
    subject = subject_line(iso_week=iso_week, needing_action=needing, digest=digest)
    context = {
        "subject": subject,
        "iso_week": iso_week,
        "as_of": as_of,
        "recipient": recipient,
        "digest": digest,
        "sections": sections,
        "needing_action": _accounts_need(needing),
        "accounts": counted(accounts, "account"),
    }
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = recipient
    message.set_content(_templates.get_template("weekly.txt.j2").render(context))
    message.add_alternative(
        _templates.get_template("weekly.html.j2").render(context), subtype="html"
    )
    html_part = message.get_body(preferencelist=("html",))
    assert isinstance(html_part, EmailMessage)
    for cid, png in images:
        html_part.add_related(png, maintype="image", subtype="png", cid=cid)
    message.add_attachment(
        findings_csv(findings).encode(),
        maintype="text",
        subtype="csv",
        filename=f"findings-{iso_week}.csv",
    )
    return message
