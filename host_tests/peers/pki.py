# A CA and certificates made at run time, for the DTLS tests with X.509 certificates.
import datetime as dt
import os

from mbedtls import hashlib, pk, x509


class Pki:
    # EC P-256 keys and certificates (python-mbedtls, as the client's tls stand-in uses),
    # written as DER into a folder: ca.der, server.der and server-key.der (a server named
    # 127.0.0.1), then a client's <name>.der and <name>-key.der for each client().
    def __init__(self, folder):
        self.folder = folder
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        self.not_before, self.not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=1)
        self._serial = 0
        self.ca_name = "CN=host-tests CA %d,O=host tests" % os.getpid()
        self.ca_key = self._key()
        self.ca = self._sign(self.ca_name, self.ca_key, ca=True)
        self.ca_file = self._write("ca.der", self.ca.to_DER())
        self.server_cert, self.server_key = self.client("server", cn="127.0.0.1")

    def _key(self):
        key = pk.ECC(pk.Curve.SECP256R1)
        key.generate()
        return key

    def _sign(self, subject, key, ca=False, issuer=None, issuer_key=None):
        self._serial += 1
        return x509.CRT.new(
            not_before=self.not_before, not_after=self.not_after,
            issuer=issuer or self.ca_name, issuer_key=issuer_key or self.ca_key,
            subject=subject, subject_key=key, serial_number=self._serial, digestmod=hashlib.sha256(),
            basic_constraints=x509.BasicConstraints(ca=ca, max_path_length=0 if ca else -1))

    def _write(self, name, data):
        path = self.folder / name
        path.write_bytes(data)
        return str(path)

    def client(self, name, cn=None, pem=False, self_signed=False):
        # (certificate file, private key file) for CN = cn (default: name), signed by the CA
        # or by its own key
        key = self._key()
        subject = "CN=%s" % (cn or name)
        crt = self._sign(subject, key, issuer=subject, issuer_key=key) if self_signed else self._sign(subject, key)
        if pem:
            return (self._write(name + ".pem", crt.to_PEM().encode()),
                    self._write(name + "-key.pem", key.export_key("PEM").encode()))
        return self._write(name + ".der", crt.to_DER()), self._write(name + "-key.der", key.export_key("DER"))
