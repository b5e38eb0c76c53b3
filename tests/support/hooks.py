"""Hooks a test puts into the portal's own processes through settings, to stop a worker at a moment no
fault of the simulator can reach.

`PausingIssuer` (TRUSTVIEW_ISSUERS=tests.support.hooks.PausingIssuer) is the MitID issuer, except that
while the file TRUSTVIEW_TEST_PAUSE_ARM exists it holds the first order step that collects an issued
certificate: it writes TRUSTVIEW_TEST_PAUSE_HELD and sleeps, after the CA answered and before the portal
stored anything, so the test can kill the worker right there. It holds one step only (once HELD exists,
it is the plain issuer).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from certificates.issuers import IssuerOrder
from certificates.models import Certificate
from mitid.issuer import MitIDIssuer


class PausingIssuer(MitIDIssuer):
    def order_status(self, certificate: Certificate, order_id: str) -> IssuerOrder:
        answer = super().order_status(certificate, order_id)
        armed = Path(os.environ.get("TRUSTVIEW_TEST_PAUSE_ARM", "/nonexistent"))
        held = Path(os.environ.get("TRUSTVIEW_TEST_PAUSE_HELD", "/nonexistent"))
        if answer.status == "issued" and armed.exists() and not held.exists():
            held.write_text(answer.order_id)
            time.sleep(120)  # until the test kills this worker
        return answer
