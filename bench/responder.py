"""`python -m bench.responder CERT KEY DELAY`: a CA's OCSP responder and CRL server on 127.0.0.1 for the
revocation figure, in a process of its own (so it takes no CPU from the check it answers).

POST /ocsp answers every request "good", signed by the CA (cryptography), after DELAY seconds; GET /crl
serves one CRL of the CA (five revoked serial numbers that no certificate has) after the same delay. It
prints its port on the first line of stdout and serves until stdin closes.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp


def main(cert_path: str, key_path: str, delay: float) -> None:
    with open(cert_path, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(key_path, "rb") as f:
        loaded = serialization.load_pem_private_key(f.read(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    key: ec.EllipticCurvePrivateKey = loaded
    now = dt.datetime.now(dt.UTC)
    crl = x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
    crl = crl.last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=1))
    for serial in range(1, 6):
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        crl = crl.add_revoked_certificate(entry)
    crl_der = crl.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            time.sleep(delay)
            self._send(crl_der, "application/pkix-crl")

        def do_POST(self) -> None:
            request = ocsp.load_der_ocsp_request(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(delay)
            moment = dt.datetime.now(dt.UTC)
            answer = (
                ocsp.OCSPResponseBuilder()
                .add_response_by_hash(
                    issuer_name_hash=request.issuer_name_hash,
                    issuer_key_hash=request.issuer_key_hash,
                    serial_number=request.serial_number,
                    algorithm=request.hash_algorithm,
                    cert_status=ocsp.OCSPCertStatus.GOOD,
                    this_update=moment - dt.timedelta(minutes=1),
                    next_update=moment + dt.timedelta(hours=1),
                    revocation_time=None,
                    revocation_reason=None,
                )
                .responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
                .sign(key, hashes.SHA256())
            )
            self._send(answer.public_bytes(serialization.Encoding.DER), "application/ocsp-response")

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the check opens a connection per thread at once

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_port, flush=True)
    sys.stdin.read()  # until the benchmark closes it
    server.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
