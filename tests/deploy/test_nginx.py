"""The proxy in front of the API (deploy/nginx/api.conf), read as nginx reads it (crossplane,
nginx's own parser in Python): what its access log may hold, and which client address it hands
on. Anyone who can read `docker compose logs proxy` must not find a screener or report link
there, nor be able to choose the address the API counts their attempts under."""

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import crossplane
import pytest

from api.access_log import _PLAIN_ID
from tests.deploy.test_compose import services

ROOT = Path(__file__).resolve().parents[2]
API_CONF = ROOT / "deploy" / "nginx" / "api.conf"
TOKEN = "q1w2E3r4T5y6U7i8O9p0-_aSdFgHjKlZxCvBnM"  # the shape of a screener link's token

Directive = dict[str, Any]


@cache
def parsed() -> list[Directive]:
    result = crossplane.parse(str(API_CONF), single=True, check_ctx=False, comments=False)
    assert result["status"] == "ok", result["errors"]
    directives: list[Directive] = result["config"][0]["parsed"]
    return directives


def walk(directives: list[Directive]) -> list[Directive]:
    found: list[Directive] = []
    for directive in directives:
        found.append(directive)
        found.extend(walk(directive.get("block", [])))
    return found


def named(name: str) -> list[Directive]:
    return [d for d in walk(parsed()) if d["directive"] == name]


def server() -> list[Directive]:
    [block] = named("server")
    return list(block["block"])


def log_format() -> tuple[str, str]:
    [directive] = named("log_format")
    name, escape, *parts = directive["args"]
    assert escape == "escape=json"
    return name, "".join(parts)


def redacting_map() -> tuple[str, list[list[str]]]:
    [directive] = named("map")
    source, target = directive["args"]
    assert target == "$path_without_token"
    # Each entry is `key value;`: crossplane reads the key as the directive's name.
    return source, [[entry["directive"], *entry["args"]] for entry in directive["block"]]


def logged_path(uri: str) -> str:
    """What the map gives for this $uri, as nginx computes it (PCRE and Python agree on this
    pattern: named groups in the `(?P<name>)` form)."""
    _, entries = redacting_map()
    for key, value in entries:
        if key == "default":
            continue
        assert key.startswith("~"), "only regular expressions in the map"
        match = re.search(key[1:], uri)
        if match:
            result = value
            for name, text in match.groupdict().items():
                result = result.replace(f"${name}", text or "")
            return result
    [default] = [value for key, value in entries if key == "default"]
    assert default == "$uri"
    return uri


def test_the_file_is_valid_nginx_configuration_where_the_image_includes_it(
    tmp_path: Path,
) -> None:
    """The nginx image includes conf.d/*.conf inside `http { }`: each directive must be allowed
    there, with the number of arguments nginx takes."""
    main = tmp_path / "nginx.conf"
    main.write_text(f"events {{}}\nhttp {{\n    include {API_CONF};\n}}\n")
    result = crossplane.parse(str(main), check_ctx=True, check_args=True)
    assert result["status"] == "ok", result["errors"]
    assert [config["file"] for config in result["config"]] == [str(main), str(API_CONF)]


def test_the_proxy_publishes_the_port_the_config_listens_on() -> None:
    [listen] = [d for d in server() if d["directive"] == "listen"]
    proxy = services()["proxy"]
    assert any(str(port).endswith(f":{listen['args'][0]}") for port in proxy["ports"])
    assert str(API_CONF.relative_to(ROOT)) in " ".join(proxy["volumes"])


def test_every_access_line_uses_the_redacting_format() -> None:
    name, _ = log_format()
    access_logs = named("access_log")
    assert access_logs, "no access_log: nginx would fall back to its default format"
    for directive in access_logs:
        assert directive["args"][-1] == name, directive["args"]


def test_the_log_format_names_no_raw_path_query_referer_or_header() -> None:
    _, template = log_format()
    variables = set(re.findall(r"\$(\w+)", template))
    for leaky in ("request", "request_uri", "uri", "document_uri", "args", "query_string",
                  "request_body", "http_referer", "http_cookie", "http_authorization"):  # fmt: skip
        assert leaky not in variables, leaky
    assert not {v for v in variables if v.startswith(("http_", "arg_", "cookie_", "sent_http"))}
    assert "path_without_token" in variables
    source, _ = redacting_map()
    assert source == "$uri"  # the decoded, normalized path: no query string to start with


def test_each_line_is_one_json_object() -> None:
    _, template = log_format()
    line = re.sub(r"\$\w+", "x", template)
    record = json.loads(line)
    assert {"time", "client", "request_id", "method", "path", "status"} <= set(record)


@pytest.mark.parametrize(
    ("uri", "logged"),
    [
        (f"/s/{TOKEN}", "/s/[token]"),
        (f"/s/{TOKEN}/begin", "/s/[token]/begin"),
        (f"/s/{TOKEN}/submit", "/s/[token]/submit"),
        (f"/r/{TOKEN}", "/r/[token]"),
        (f"/r/{TOKEN}/", "/r/[token]/"),
        ("/api/screenings", "/api/screenings"),
        ("/ashby/webhooks/5f0c1d9e-3b1a-4c55-9f7e-2d8a6b4c1e00", None),
        ("/static/app.css", "/static/app.css"),
        ("/signin", "/signin"),
        ("/sitemap/s/x", "/sitemap/s/x"),
    ],
)
def test_link_tokens_never_reach_the_log(uri: str, logged: str | None) -> None:
    assert logged_path(uri) == (logged if logged is not None else uri)
    assert TOKEN not in logged_path(uri)


def test_request_errors_are_not_logged_with_their_request_line() -> None:
    [error_log] = [d for d in server() if d["directive"] == "error_log"]
    assert error_log["args"][-1] == "emerg"


def test_the_client_address_handed_on_is_the_one_nginx_saw() -> None:
    [location] = [d for d in server() if d["directive"] == "location"]
    headers = {
        d["args"][0].lower(): d["args"][1]
        for d in location["block"]
        if d["directive"] == "proxy_set_header"
    }
    # Not $proxy_add_x_forwarded_for: that appends to whatever the client wrote.
    assert headers["x-forwarded-for"] == "$remote_addr"
    assert headers["x-request-id"] == "$request_id"
    # nginx's ids (32 hex digits) are ones the API keeps as they are.
    assert _PLAIN_ID.fullmatch("0123456789abcdef0123456789abcdef")
