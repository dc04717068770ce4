"""The webhook operations over HTTP: admin only, the secret never shown again, strict URL and
secret checks, and every bad input answered with a typed error that writes nothing."""

from __future__ import annotations

import psycopg
import pytest

from ledger.errors import AppendOnly, translate
from ledger.webhooks.endpoints import create_endpoint, endpoints_max

SECRET = "0123456789abcdef-secret"
FIELDS = "__typename ... on WebhookEndpoint { id url events status createdBy failedAttempts nextAttemptAt } " \
         "... on LedgerError { code message } ... on ValidationError { field }"
CREATE = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { %s } }" % FIELDS
DISABLE = "mutation($id: ID!) { disableWebhookEndpoint(input: {id: $id}) { %s } }" % FIELDS
ENABLE = "mutation($id: ID!) { enableWebhookEndpoint(input: {id: $id}) { %s } }" % FIELDS
DELETE = "mutation($id: ID!) { deleteWebhookEndpoint(input: {id: $id}) { %s } }" % FIELDS
LIST = "query($all: Boolean!) { webhookEndpoints(includeDeleted: $all) { id url status events } }"
LOG = """query($id: ID!, $after: String, $first: Int) { webhookDeliveries(endpointId: $id, after: $after,
  first: $first) { edges { cursor node { id attempt } } pageInfo { hasNextPage endCursor } } }"""


def create(api, url="https://hooks.example.com/ledger", events=("transaction.posted",), secret=SECRET, **auth):
    return api.data(CREATE, {"input": {"url": url, "events": list(events), "secret": secret}},
                    **auth)["createWebhookEndpoint"]


def stored(conn):
    return conn.execute("select count(*) from ledger.webhook_endpoints").fetchone()[0], \
        conn.execute("select count(*) from ledger.webhook_positions").fetchone()[0]


def test_an_admin_makes_lists_disables_enables_and_deletes_an_endpoint(api, conn):
    made = create(api)
    assert made["__typename"] == "WebhookEndpoint"
    assert (made["url"], made["events"], made["status"]) == (
        "https://hooks.example.com/ledger", ["transaction.posted"], "ACTIVE")
    assert made["createdBy"].endswith("(admin)") and made["failedAttempts"] == 0
    assert api.data(LIST, {"all": False})["webhookEndpoints"] == [
        {"id": made["id"], "url": made["url"], "status": "ACTIVE", "events": ["transaction.posted"]}]
    assert api.data(DISABLE, {"id": made["id"]})["disableWebhookEndpoint"]["status"] == "DISABLED"
    assert api.data(ENABLE, {"id": made["id"]})["enableWebhookEndpoint"]["status"] == "ACTIVE"
    assert api.data(DELETE, {"id": made["id"]})["deleteWebhookEndpoint"]["status"] == "DELETED"
    assert api.data(LIST, {"all": False})["webhookEndpoints"] == []
    assert [e["status"] for e in api.data(LIST, {"all": True})["webhookEndpoints"]] == ["DELETED"]
    assert conn.execute("select secret from ledger.webhook_endpoints").fetchone() == (None,), "the secret is erased"
    again = api.data(ENABLE, {"id": made["id"]})["enableWebhookEndpoint"]
    assert again["code"] == "WEBHOOK_ENDPOINT_NOT_FOUND", "a deleted endpoint never comes back"


def test_the_secret_is_never_returned(api):
    create(api)
    errors = api.errors("{ webhookEndpoints { id secret } }")
    assert "secret" in errors[0]["message"]
    body = api.query("{ webhookEndpoints { id url events status createdBy createdAt changedAt } }")
    assert SECRET not in str(body)


@pytest.mark.parametrize("role", ["operator", "auditor", "holder"])
def test_only_an_admin_may_touch_webhooks(api, conn, role):
    holder = "U1" if role == "holder" else None
    made = create(api, role=role, holder=holder)
    assert made["code"] == "FORBIDDEN"
    assert stored(conn) == (0, 0)
    endpoint = create_endpoint(conn, "https://hooks.example.com/x", ["transaction.posted"], SECRET,
                               created_by="test", allow_private_targets=False)
    for mutation, name in ((DISABLE, "disableWebhookEndpoint"), (DELETE, "deleteWebhookEndpoint")):
        assert api.data(mutation, {"id": str(endpoint.id)}, role=role, holder=holder)[name]["code"] == "FORBIDDEN"
    assert conn.execute("select status from ledger.webhook_endpoints").fetchone() == ("active",)
    for query, variables in ((LIST, {"all": True}), (LOG, {"id": str(endpoint.id)})):
        errors = api.errors(query, variables, role=role, holder=holder)
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"


BAD_URLS = [
    ("ftp://hooks.example.com/x", "http:// or https://"),
    ("javascript:alert(1)", "http:// or https://"),
    ("hooks.example.com/x", "http:// or https://"),
    ("https://user:pw@hooks.example.com/x", "user name or password"),
    ("https://user@hooks.example.com/x", "user name or password"),
    ("https://hooks.example.com/x#frag", "fragment"),
    ("https://hooks.example.com/a b", "printable ASCII"),
    ("https://hooks.example.com/\r\nX-Injected: 1", "printable ASCII"),
    ("https://hooks.example.com/\t", "printable ASCII"),
    ("https://hooks.例子.com/x", "printable ASCII"),
    ("https://hooks.example.com/" + "a" * 2000, "1 to 2000 characters"),
    ("", "1 to 2000 characters"),
    ("https:///x", "host"),
    ("https://hooks.example.com:0/x", "port"),
    ("https://hooks.example.com:99999/x", "port"),
    ("https://hooks.example.com:80a/x", "port"),
    ("https://hooks_example.com/x", "neither a domain name"),
    ("https://-hooks.example.com/x", "neither a domain name"),
    ("https://127.0.0.1/x", "not a public address"),
    ("https://10.1.2.3/x", "not a public address"),
    ("https://192.168.0.1/x", "not a public address"),
    ("https://169.254.169.254/latest/meta-data", "not a public address"),
    ("https://100.64.0.1/x", "not a public address"),
    ("https://0.0.0.0/x", "not a public address"),
    ("https://[::1]/x", "not a public address"),
    ("https://[::ffff:127.0.0.1]/x", "not a public address"),
    ("https://[fd00::1]/x", "not a public address"),
    ("https://localhost/x", "names this machine"),
    ("https://api.localhost/x", "names this machine"),
    ("https://2130706433/x", "looks like a number"),
    ("https://0x7f.1/x", "looks like a number"),
    ("https://127.1/x", "looks like a number"),
    ("https://::1/x", "host"),
    ("https://[hooks.example.com]/x", "IPv6"),
    ("http://[2001:4860:4860::8888%25x]/", "zone id"),   # public address, with a zone id
    ("http://[fe80::1%25eth0]/", "zone id"),
    ("http://[2001:4860:4860::8888%x]/", "zone id"),
]


@pytest.mark.parametrize(("url", "reason"), BAD_URLS)
def test_a_bad_url_is_refused_and_nothing_is_written(api, conn, url, reason):
    made = create(api, url=url)
    assert (made["__typename"], made["code"], made["field"]) == ("ValidationError", "VALIDATION", "url"), made
    assert reason in made["message"]
    assert stored(conn) == (0, 0)


def test_a_url_with_a_nul_is_refused_before_any_resolver(api, conn):
    errors = api.errors(CREATE, {"input": {"url": "https://hooks.example.com/\x00", "events": ["transaction.posted"],
                                           "secret": SECRET}})
    assert errors[0]["extensions"]["code"] == "VALIDATION"
    assert stored(conn) == (0, 0)


def test_private_addresses_are_allowed_only_by_the_setting(api, conn, monkeypatch):
    assert create(api, url="http://127.0.0.1:9/x")["code"] == "VALIDATION"
    monkeypatch.setenv("LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "1")
    for url in ("http://127.0.0.1:9/x", "http://localhost:9/", "http://[::1]:9/x", "http://10.0.0.7/x"):
        assert create(api, url=url)["__typename"] == "WebhookEndpoint", url
    assert create(api, url="https://user@127.0.0.1/x")["code"] == "VALIDATION", "the other rules still hold"
    zoned = create(api, url="http://[fe80::1%25eth0]:9/x")  # a zone id is refused even where private is allowed
    assert (zoned["code"], zoned["field"]) == ("VALIDATION", "url") and "zone id" in zoned["message"], zoned
    monkeypatch.setenv("LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "maybe")
    made = create(api, url="https://hooks.example.com/x")
    assert (made["code"], made["field"]) == ("VALIDATION", "LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS")
    assert stored(conn) == (4, 4)


@pytest.mark.parametrize(("events", "reason"), [
    ([], "at least one"),
    (["transaction.created"], "not an event type"),
    (["transaction.posted", "transaction.posted"], "once"),
    (["TRANSACTION.POSTED"], "not an event type"),
    (["transaction.posted\n"], "not an event type"),
])
def test_bad_events_are_refused_and_nothing_is_written(api, conn, events, reason):
    made = create(api, events=events)
    assert (made["code"], made["field"]) == ("VALIDATION", "events"), made
    assert reason in made["message"]
    assert stored(conn) == (0, 0)


@pytest.mark.parametrize(("secret", "reason"), [
    ("short", "16 to 256"),
    ("", "16 to 256"),
    ("x" * 257, "16 to 256"),
    ("0123456789abcdef\n", "printable"),
    ("0123456789abcdef\x7f", "printable"),
    ("0123456789abcdef\u2028", "printable"),
])
def test_a_bad_secret_is_refused_and_nothing_is_written(api, conn, secret, reason):
    made = create(api, secret=secret)
    assert (made["code"], made["field"]) == ("VALIDATION", "secret"), made
    assert reason in made["message"]
    assert SECRET not in made["message"] and (len(secret) < 8 or secret not in made["message"])
    assert stored(conn) == (0, 0)


def test_wrong_types_are_refused_by_the_schema(api, conn):
    for value in ({"url": 5, "events": ["transaction.posted"], "secret": SECRET},
                  {"url": "https://a.example.com/", "events": [["transaction.posted"]], "secret": SECRET},
                  {"url": "https://a.example.com/", "events": [None], "secret": SECRET},
                  {"url": "https://a.example.com/", "events": ["transaction.posted"]}):
        response = api.http(CREATE, {"input": value})
        assert response.status_code < 500
        assert response.json()["errors"], value
    assert stored(conn) == (0, 0)


@pytest.mark.parametrize(("endpoint_id", "code"), [
    ("abc", "VALIDATION"), ("0", "VALIDATION"), ("-1", "VALIDATION"), ("99999999999999999999", "VALIDATION"),
    ("1e3", "VALIDATION"), ("４２", "VALIDATION"), ("12345", "WEBHOOK_ENDPOINT_NOT_FOUND"),
])
def test_a_bad_endpoint_id_gets_a_typed_error_and_changes_nothing(api, conn, endpoint_id, code):
    create(api)
    for mutation, name in ((DISABLE, "disableWebhookEndpoint"), (ENABLE, "enableWebhookEndpoint"),
                           (DELETE, "deleteWebhookEndpoint")):
        assert api.data(mutation, {"id": endpoint_id})[name]["code"] == code
    errors = api.errors(LOG, {"id": endpoint_id})
    assert errors[0]["extensions"]["code"] == code
    assert conn.execute("select status, changed_at from ledger.webhook_endpoints").fetchone() == ("active", None)


def test_the_endpoints_are_bounded(api, conn):
    for n in range(endpoints_max - 1):
        create_endpoint(conn, f"https://hooks.example.com/{n}", ["transaction.posted"], SECRET, created_by="test",
                        allow_private_targets=False)
    assert create(api)["__typename"] == "WebhookEndpoint"
    made = create(api)
    assert made["code"] == "TOO_MANY_WEBHOOK_ENDPOINTS"
    assert stored(conn) == (endpoints_max, endpoints_max)
    api.data(DELETE, {"id": "1"})
    assert create(api)["__typename"] == "WebhookEndpoint", "a deleted endpoint no longer counts"


def test_the_delivery_log_pages_newest_first_and_refuses_forged_cursors(api, conn):
    made = create(api)
    tx = conn.execute("select 1").fetchone()
    assert tx == (1,)
    for attempt in range(1, 6):
        conn.execute("""insert into ledger.webhook_deliveries (endpoint_id, event_id, event_type, transaction_id,
                            attempt, duration_ms, status_code, error, delivered, next_attempt_at)
                        values (%s, 'transaction.posted:1', 'transaction.posted', 1, %s, 3, 500, 'HTTP 500',
                                false, now())""", (int(made["id"]), attempt))
    first = api.data(LOG, {"id": made["id"], "first": 2})["webhookDeliveries"]
    assert [e["node"]["attempt"] for e in first["edges"]] == [5, 4] and first["pageInfo"]["hasNextPage"]
    rest = api.data(LOG, {"id": made["id"], "first": 10, "after": first["pageInfo"]["endCursor"]})
    assert [e["node"]["attempt"] for e in rest["webhookDeliveries"]["edges"]] == [3, 2, 1]
    for after in ("garbage", "eyJ4IjoxfQ", "eyJkIjoxMDAwMDAwMDAwMDAwMDAwMDAwMDAwfQ", "\u00e9" * 2000):
        errors = api.errors(LOG, {"id": made["id"], "after": after})
        assert errors[0]["extensions"]["code"] == "VALIDATION", after
    for first_n in (-1, 100_000):
        assert api.errors(LOG, {"id": made["id"], "first": first_n})[0]["extensions"]["code"] == "VALIDATION"


def test_the_log_is_append_only_and_endpoints_keep_their_identity(conn):
    endpoint = create_endpoint(conn, "https://hooks.example.com/x", ["transaction.posted"], SECRET,
                               created_by="test", allow_private_targets=False)
    conn.execute("""insert into ledger.webhook_deliveries (endpoint_id, event_id, event_type, transaction_id,
                        attempt, duration_ms, delivered) values (%s, 'e', 'transaction.posted', 1, 1, 1, true)""",
                 (endpoint.id,))
    for statement in ("update ledger.webhook_deliveries set delivered = false, error = 'x'",
                      "delete from ledger.webhook_deliveries",
                      "truncate ledger.webhook_deliveries cascade",
                      "delete from ledger.webhook_endpoints",
                      "update ledger.webhook_endpoints set url = 'https://evil.example.com/'",
                      "update ledger.webhook_endpoints set events = '{}'"):
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(statement)
        assert isinstance(translate(raised.value), AppendOnly), statement
    conn.execute("update ledger.webhook_endpoints set status = 'deleted', secret = null")
    with pytest.raises(psycopg.Error) as raised:
        conn.execute("update ledger.webhook_endpoints set status = 'active', secret = 'x' || repeat('y', 20)")
    assert isinstance(translate(raised.value), AppendOnly)


def test_the_endpoint_list_pages_by_id(api, conn):
    for n in range(5):
        create(api, url=f"https://hooks.example.com/{n}")
    api.data(DELETE, {"id": "2"})
    query = "query($after: ID, $first: Int, $all: Boolean!) { webhookEndpoints(afterId: $after, first: $first, " \
            "includeDeleted: $all) { id } }"
    ids = lambda body: [e["id"] for e in body["webhookEndpoints"]]  # noqa: E731
    assert ids(api.data(query, {"first": 2, "all": False})) == ["1", "3"]
    assert ids(api.data(query, {"after": "3", "first": 2, "all": False})) == ["4", "5"]
    assert ids(api.data(query, {"after": "1", "first": 1, "all": True})) == ["2"]
    for variables in ({"after": "x", "all": False}, {"after": "0", "all": False}, {"first": 501, "all": False},
                      {"first": -1, "all": False}):
        assert api.errors(query, variables)[0]["extensions"]["code"] == "VALIDATION", variables
