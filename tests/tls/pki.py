"""Test PKI for the TLS end-to-end tests (Python `cryptography`, from the test venv).

Usage: pki.py DIR. Writes PEM files into DIR:
  test-ca.pem                 a CA the agent is told to trust for the upstream (upstream_ca)
  good.pem/.key               localhost + 127.0.0.1 + mcp.test.example, signed by test-ca
  expired.pem/.key            the same names, expired yesterday
  wrongname.pem/.key          signed by test-ca for elsewhere.example only
  selfsigned.pem/.key         localhost, self-signed (nobody trusts it)
  other.pem/.key              other.test.example, signed by test-ca (a server nobody inspects)
  client.pem/.key             a client certificate (clientAuth) signed by test-ca, for mTLS
"""

import datetime
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write(out, stem, cert, key):
    (out / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / f"{stem}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def leaf(cn, sans, issuer_name, issuer_key, not_before, not_after, key=None, usage=ExtendedKeyUsageOID.SERVER_AUTH):
    key = key or ec.generate_private_key(ec.SECP256R1())
    alt = []
    for san in sans:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            alt.append(x509.DNSName(san))
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256()), key


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    day = datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("gateway-agent e2e upstream CA"))
        .issuer_name(name("gateway-agent e2e upstream CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - day)
        .not_valid_after(NOW + 30 * day)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (out / "test-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    names = ["localhost", "127.0.0.1", "mcp.test.example"]
    write(out, "good", *leaf("localhost", names, ca.subject, ca_key, NOW - day, NOW + 30 * day))
    write(out, "expired", *leaf("localhost", names, ca.subject, ca_key, NOW - 10 * day, NOW - day))
    write(out, "wrongname", *leaf("elsewhere.example", ["elsewhere.example"], ca.subject, ca_key, NOW - day, NOW + 30 * day))
    write(out, "other", *leaf("other.test.example", ["other.test.example"], ca.subject, ca_key, NOW - day, NOW + 30 * day))
    write(out, "client", *leaf("gateway-agent e2e client", ["client.test.example"], ca.subject, ca_key, NOW - day, NOW + 30 * day, usage=ExtendedKeyUsageOID.CLIENT_AUTH))
    self_key = ec.generate_private_key(ec.SECP256R1())
    # A subject of its own: a self-signed "CN=localhost" could collide with a root some
    # host's store happens to hold under that name.
    self_name = name("gateway-agent e2e self-signed")
    write(out, "selfsigned", *leaf("gateway-agent e2e self-signed", names, self_name, self_key, NOW - day, NOW + 30 * day, key=self_key))


main(sys.argv[1])
