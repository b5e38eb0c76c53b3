"""python manage.py import_certificates PATH... [--password-file F]"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from certificates.services import import_certificate_file
from certificates.x509 import CertificateFileError

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Import certificate files (PEM, DER or PKCS#12) into the inventory. Each file is imported whole "
        "or not at all; the others go on. Ends with a summary (certificates imported and already present, "
        "files failed); the exit status is 1 when any file could not be imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="certificate files")
        parser.add_argument(
            "--password-file",
            metavar="F",
            help="file whose first line is the password of the PKCS#12 files or encrypted keys "
            "(a file, so the password is not in the shell history or the process list)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = self._password(options["password_file"])
        imported = present = failures = 0
        for name in options["paths"]:
            path = Path(name)
            try:
                outcomes = import_certificate_file(
                    self._read(path), password=password, actor="command line", filename=path.name
                )
            except CertificateFileError as error:
                failures += 1
                self.stderr.write(f"{path}: {error}")
                continue
            except Exception:
                # A fault of ours, not of the file: say so, keep the traceback for the log, and go on
                # with the other files (this file's transaction has been rolled back).
                logger.exception("Importing %s failed", path)
                failures += 1
                self.stderr.write(f"{path}: The file could not be imported because of an internal error.")
                continue
            for outcome in outcomes:
                style = self.style.SUCCESS if outcome.created else self.style.NOTICE
                self.stdout.write(style(f"{path}: {outcome.message}"))
                imported, present = imported + outcome.created, present + (not outcome.created)
        self.stdout.write(f"{imported} imported, {present} already present, {failures} failed.")
        if failures:
            raise CommandError(
                f"{failures} of {len(options['paths'])} files were not imported.", returncode=1
            )

    def _read(self, path: Path) -> bytes:
        try:
            if path.stat().st_size > settings.TRUSTVIEW_IMPORT_MAX_BYTES:
                # Say so without reading a large file into memory.
                return b"\0" * (settings.TRUSTVIEW_IMPORT_MAX_BYTES + 1)
            return path.read_bytes()
        except OSError as error:
            raise CertificateFileError(f"The file cannot be read: {error.strerror}.") from error

    def _password(self, password_file: str | None) -> str | None:
        if not password_file:
            return None
        try:
            lines = Path(password_file).read_text().splitlines()
        except OSError as error:
            raise CommandError(f"The password file cannot be read: {error.strerror}.") from error
        return lines[0] if lines else ""
