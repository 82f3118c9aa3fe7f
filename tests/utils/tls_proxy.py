"""A TLS-terminating TCP proxy that demands a client certificate, for putting mTLS in front of
the Temporal dev server (which has no TLS of its own):

    python -m tests.utils.tls_proxy --listen PORT --upstream HOST:PORT \\
        --cert server.pem --key server-key.pem --ca ca.pem

TLS 1.2 or later through Python's `ssl` (OpenSSL); a client without a certificate signed by
`--ca` is refused in the handshake; ALPN offers `h2`, which gRPC clients built on tonic (the
Temporal SDK's core among them) require, as Temporal's own frontend does. (Debian's stunnel4,
5.68, negotiates no ALPN, so those clients refuse it: `H2NotNegotiated`.) Bytes are relayed
unchanged both ways. Prints `listening` once it accepts connections, then one line per
connection with the client certificate's subject.
"""

import argparse
import asyncio
import contextlib
import ssl
import sys

CHUNK = 65536


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    writer.close()


def _subject(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peercert") or {}
    names = [f"{key}={value}" for entry in peer.get("subject", ()) for key, value in entry]
    return ",".join(names) or "none"


async def _connection(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, upstream: str
) -> None:
    print(f"accepted client certificate {_subject(client_writer)}", flush=True)
    host, _, port = upstream.rpartition(":")
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        _relay(client_reader, upstream_writer), _relay(upstream_reader, client_writer)
    )


def server_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    return context


async def serve(args: argparse.Namespace) -> None:
    context = server_context(args.cert, args.key, args.ca)
    server = await asyncio.start_server(
        lambda reader, writer: _connection(reader, writer, args.upstream),
        "127.0.0.1",
        args.listen,
        ssl=context,
    )
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="HOST:PORT, plain TCP")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True, help="the CA client certificates must chain to")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
