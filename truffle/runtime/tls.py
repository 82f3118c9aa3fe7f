"""One TLS context per process for every HTTP client the project makes."""

import functools
import ssl

import httpx


@functools.cache
def verified_tls() -> ssl.SSLContext:
    """httpx's own default verification (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR),
    built once per process: httpx builds one for every client it makes, and each build reads
    the whole CA bundle, about 50 ms of CPU. Pass it as `verify=` to each client."""
    return httpx.create_ssl_context()
