"""The TLS contexts of a process's clients, each built once: HTTP (httpx) and mail (aiosmtplib)."""

import functools
import ssl

import httpx


@functools.cache
def verified_tls() -> ssl.SSLContext:
    """httpx's own default verification (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR),
    built once per process: httpx builds one for every client it makes, and each build reads
    the whole CA bundle, about 50 ms of CPU. Pass it as `verify=` to each client."""
    return httpx.create_ssl_context()


@functools.cache
def mail_tls() -> ssl.SSLContext:
    """What aiosmtplib verifies a mail server's certificate with by default (the system's CAs,
    the host name checked), built once per process instead of once per email."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
