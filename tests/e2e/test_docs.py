"""The API's own documentation: /openapi.json, and the /docs and /redoc pages, offline."""

from __future__ import annotations

import re

from tests.support import RunningServer, assert_problem


def test_the_openapi_document_describes_the_phone_home_route(server: RunningServer) -> None:
    with server.client() as http:
        document = http.get("/openapi.json").json()
    operation = document["paths"]["/v1/reports"]["post"]
    assert set(operation["responses"]) == {
        "202",
        "400",
        "401",
        "408",
        "409",
        "413",
        "415",
        "422",
        "429",
        "503",
    }
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    refs = {ref["$ref"].rsplit("/", 1)[1] for ref in body["anyOf"]}
    assert refs == {"StatisticsReport", "ReportBatch"}
    report = document["components"]["schemas"]["StatisticsReport"]
    assert report["additionalProperties"] is False
    assert "users" in document["components"]["schemas"]["ReportMetrics"]["required"]
    assert "/v1/customers/{customer_id}" in document["paths"]
    attestation = document["paths"]["/v1/attestations"]["post"]
    assert attestation["security"] == [{"licenseKey": []}]
    schema = attestation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/AttestationBundle"}
    bundle = document["components"]["schemas"]["AttestationBundle"]
    assert {"quarter", "reports", "certification", "signature"} <= set(bundle["required"])
    assert bundle["properties"]["reports"]["items"] == {
        "$ref": "#/components/schemas/StatisticsReport"
    }
    assert "Certification" in document["components"]["schemas"]
    # Swagger UI's "Authorize" sends a staff token to every admin route.
    assert set(document["components"]["securitySchemes"]) == {"staffToken", "licenseKey"}
    for path in ("/v1/customers", "/v1/findings", "/v1/weekly-reports/{iso_week}"):
        (operation,) = document["paths"][path].values()
        assert operation["security"] == [{"staffToken": []}], path
    assert not [p for p in document["paths"] if p.startswith("/ui")]  # pages, not API


def test_the_docs_pages_load_nothing_from_the_internet(server: RunningServer) -> None:
    with server.client() as http:
        for page in ("/docs", "/redoc"):
            answer = http.get(page)
            assert answer.status_code == 200
            html = answer.text
            assert not re.search(r"https?://", html), f"{page} names a remote resource"
            assets = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert any(asset.endswith(".js") for asset in assets), html
            for asset in assets:
                fetched = http.get(asset)
                assert fetched.status_code == 200, asset
                assert len(fetched.content) > 1000, asset
            assert "url: '/openapi.json'" in html or '"/openapi.json"' in html
        # The validator badge would send the document's URL to validator.swagger.io.
        assert '"validatorUrl": null' in http.get("/docs").text


def test_every_error_answer_is_the_one_problem_schema(server: RunningServer) -> None:
    with server.client() as http:
        document = http.get("/openapi.json").json()
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            statuses = operation["responses"]
            assert "503" in statuses, (method, path)  # storage can fail under any route
            for status, response in statuses.items():
                if path == "/readyz":
                    continue  # its 503 is its own status document, checked below
                if int(status) >= 400:
                    assert response["content"] == {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    }, (method, path, status)
            if operation.get("security") == [{"staffToken": []}]:
                assert {"401", "403"} <= set(statuses), (method, path)
    unready = document["paths"]["/readyz"]["get"]["responses"]["503"]["content"]
    assert unready == {
        "application/json": {"schema": {"$ref": "#/components/schemas/HealthStatus"}}
    }
    # Alive is 200, also while storage recovers (SPEC §9 v3): its status document.
    alive = document["paths"]["/healthz"]["get"]["responses"]["200"]["content"]
    assert alive == {"application/json": {"schema": {"$ref": "#/components/schemas/HealthStatus"}}}
    assert "409" in document["paths"]["/v1/tokens"]["post"]["responses"]
    assert "404" in document["paths"]["/v1/findings"]["get"]["responses"]
    metrics = document["paths"]["/metrics"]["get"]
    assert metrics["security"] == [{"staffToken": []}]
    assert "text/plain" in metrics["responses"]["200"]["content"]


def test_a_wrong_method_names_every_method_the_path_takes(server: RunningServer) -> None:
    with server.admin() as http:
        refused = http.delete("/v1/customers/acme")
        zero = http.get("/v1/findings", params={"as_of": "0"})
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD, PUT"
    assert "it takes GET, HEAD, PUT" in refused.json()["detail"]
    # A day is written YYYY-MM-DD: 0 is not 1970-01-01.
    assert_problem(zero, 422, "YYYY-MM-DD")
