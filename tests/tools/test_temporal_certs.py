"""`truffle-ashby temporal-certs`: the CA and certificates of mTLS to Temporal, each in its own
folder (volume), kept while good and renewed before they run out."""

import datetime
import os
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tools.temporal_certs import LEAF_LIFETIME, RENEW_BEFORE, issue

NAMES = ["temporal", "localhost", "127.0.0.1"]


def folders(root: Path) -> tuple[Path, Path, Path]:
    return root / "ca", root / "server", root / "client"


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def usages(certificate: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_each_folder_holds_only_what_its_containers_need(tmp_path: Path) -> None:
    ca, server, client = folders(tmp_path)

    issued = issue(ca, server, client, NAMES, group=os.getgid())

    assert (issued.ca, issued.server, issued.client) == ("issued", "issued", "issued")
    assert sorted(p.name for p in ca.iterdir()) == ["ca-key.pem", "ca.pem"]
    assert sorted(p.name for p in server.iterdir()) == ["ca.pem", "server-key.pem", "server.pem"]
    assert sorted(p.name for p in client.iterdir()) == ["ca.pem", "client-key.pem", "client.pem"]
    authority = cert(ca / "ca.pem")
    for leaf in (server / "server.pem", client / "client.pem"):
        cert(leaf).verify_directly_issued_by(authority)
    names = cert(server / "server.pem").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert names.value.get_values_for_type(x509.DNSName) == ["temporal", "localhost"]
    assert [str(a) for a in names.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    # Temporal's nodes present the server certificate to each other as clients too.
    assert usages(cert(server / "server.pem")) == {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    }
    assert usages(cert(client / "client.pem")) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    for key in (server / "server-key.pem", client / "client-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o440  # owner and the readers' group
        assert key.stat().st_gid == os.getgid()
    assert stat.S_IMODE((ca / "ca-key.pem").stat().st_mode) == 0o400


def test_a_second_run_keeps_everything(tmp_path: Path) -> None:
    ca, server, client = folders(tmp_path)
    issue(ca, server, client, NAMES)
    before = {p: p.read_bytes() for folder in (ca, server, client) for p in folder.iterdir()}

    issued = issue(ca, server, client, NAMES)

    assert (issued.ca, issued.server, issued.client) == ("kept", "kept", "kept")
    assert {p: p.read_bytes() for p in before} == before


def test_certificates_are_renewed_before_they_run_out_under_the_same_ca(tmp_path: Path) -> None:
    ca, server, client = folders(tmp_path)
    issue(ca, server, client, NAMES)
    authority = (ca / "ca.pem").read_bytes()
    later = datetime.datetime.now(datetime.UTC) + LEAF_LIFETIME - RENEW_BEFORE / 2

    issued = issue(ca, server, client, NAMES, now=later)

    assert (issued.ca, issued.server, issued.client) == ("kept", "renewed", "renewed")
    assert (ca / "ca.pem").read_bytes() == authority
    assert cert(server / "server.pem").not_valid_after_utc > later + RENEW_BEFORE


def test_a_new_server_name_or_a_new_ca_reissues_what_depends_on_it(tmp_path: Path) -> None:
    ca, server, client = folders(tmp_path)
    issue(ca, server, client, NAMES)

    renamed = issue(ca, server, client, [*NAMES, "temporal.internal"])
    (ca / "ca-key.pem").unlink()
    new_ca = issue(ca, server, client, [*NAMES, "temporal.internal"])

    assert (renamed.server, renamed.client) == ("renewed", "kept")
    assert (new_ca.ca, new_ca.server, new_ca.client) == ("renewed", "renewed", "renewed")
    for folder in (server, client):
        assert (folder / "ca.pem").read_bytes() == (ca / "ca.pem").read_bytes()


def test_the_command_says_what_it_did_in_one_line(tmp_path: Path) -> None:
    ca, server, client = folders(tmp_path)
    argv = [sys.executable, "-m", "tools.cli", "temporal-certs", "--ca-dir", str(ca),
            "--server-dir", str(server), "--client-dir", str(client),
            "--server-name", "temporal", "--server-name", "localhost"]  # fmt: skip

    first = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    second = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)

    assert first.stdout == (
        "temporal-certs: CA issued, server certificate issued (temporal, localhost), "
        "client certificate issued\n"
    )
    assert second.stdout.count("kept") == 3


def test_a_folder_that_cannot_be_made_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    in_the_way = tmp_path / "ca"
    in_the_way.write_text("a file where the CA's folder should be")
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "temporal-certs", "--ca-dir", str(in_the_way),
         "--server-dir", str(tmp_path / "s"), "--client-dir", str(tmp_path / "c"),
         "--server-name", "temporal"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(f"truffle-ashby: cannot write the certificates ({in_the_way})")
    assert "Traceback" not in done.stderr
