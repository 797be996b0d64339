"""The OpenAPI document is exact: Schemathesis (a property-based API fuzzer) runs against the
real server over TLS, with a fixed seed and a bounded number of examples, and every check
passes on every route (issue 17). ``make fuzz`` runs the same with many more examples."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ServerFactory
from tests.support import ADMIN_TOKEN, RunningServer

#: The run is reproducible: the same seed draws the same cases.
SEED = 20261126
#: Examples per route and phase in ``make test``; ``make fuzz`` sets ``STATREPORT_FUZZ_EXAMPLES``.
EXAMPLES = int(os.environ.get("STATREPORT_FUZZ_EXAMPLES", "25"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "unsupported_method",
    "ignored_auth",
)
#: The documents whose validity rests on more than their shape: a customer's order forms
#: must agree with each other (dates, overlaps, counting rules, add-ons inside their order:
#: SPEC §3), an attestation must carry a signature made with the licence key (SPEC §4), and a
#: webhook's address must resolve, now, to public addresses (SPEC §14). For them, a valid
#: shape may still be refused with 422, and says why.
CONFIG = """
[auth.openapi.staffToken]
bearer = "{staff}"

[auth.openapi.licenseKey]
bearer = "{key}"

[[operations]]
include-path = "/v1/customers/{{customer_id}}"
include-method = "PUT"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
include-path = "/v1/attestations"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
include-path = "/v1/webhooks"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
include-path = "/v1/webhooks/{{webhook_id}}"
include-method = "PATCH"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
"""


def run_schemathesis(server: RunningServer, key: str, work: Path, examples: int) -> str:
    """Run the fuzzer over every route; answer its report, or fail with it."""
    config = work / "schemathesis.toml"
    config.write_text(CONFIG.format(staff=ADMIN_TOKEN, key=key))
    root = Path(__file__).resolve().parents[2]
    environment = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "PYTHONPATH": str(root),
        "NO_COLOR": "1",
    }
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{server.url}/openapi.json",
        "--tls-verify",
        str(server.ca_cert),
        "--seed",
        str(SEED),
        "--max-examples",
        str(examples),
        "--checks",
        ",".join(CHECKS),
        "--workers",
        "1",
        "--no-shrink",
        "--generation-database",
        "none",
    ]
    done = subprocess.run(
        command,
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=max(900, examples * 6),  # make fuzz's 500 examples take about 15 minutes
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    return report


def test_every_route_does_what_the_document_says(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    # The fuzzer sends faster than a licence key's rate allows; a 429 would hide the rest.
    server = server_factory(rate_limit_per_minute=1_000_000)
    key = server.add_customer("acme")
    report = run_schemathesis(server, key, tmp_path, EXAMPLES)
    assert "No issues found" in report or " passed" in report, report
    tested = report.split("Tested:", 1)[1].split()[0] if "Tested:" in report else ""
    with server.admin() as http:
        routes = http.get("/openapi.json").json()["paths"]
    operations = sum(len(methods) for methods in routes.values())
    assert tested == str(operations), report  # every route was exercised
