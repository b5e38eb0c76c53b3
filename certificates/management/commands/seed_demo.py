"""python manage.py seed_demo [--count N]: a demo inventory of real certificates from a throw-away CA."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management.base import BaseCommand, CommandParser

from certificates.services import import_certificate_file

SYSTEMS = [
    "Lønsystem",
    "Fakturering",
    "NemKonto",
    "Indberetning",
    "Bogføring",
    "Digital Post",
    "e-Boks",
    "Sundhedsdata",
    "Skattekort",
    "Booking",
    "Intranet",
    "Webshop",
]


class Command(BaseCommand):
    help = (
        "Fill the inventory with demo certificates (generated on the spot by a throw-away 'Demo CA', "
        "expiring over the coming year) to try the dashboard and lists. Not for production data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=40)
        parser.add_argument("--seed", type=int, default=2408, help="random seed, for a repeatable inventory")

    def handle(self, *args: Any, **options: Any) -> None:
        rng = random.Random(options["seed"])  # noqa: S311 - demo data, not secrets
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "Demo CA"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustview demo"),
            ]
        )
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1200))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        for index in range(options["count"]):
            # Mostly spread over the year, a few expired recently and a few expiring within days.
            days_left = (
                rng.choice([rng.uniform(-25, -1), rng.uniform(1, 14), rng.uniform(14, 30)])
                if index % 8 == 0
                else rng.uniform(20, 365)
            )
            not_after = now + dt.timedelta(days=days_left)
            key = ec.generate_private_key(ec.SECP256R1())
            cvr = f"{rng.randint(10000000, 99999999)}"
            name = f"{SYSTEMS[index % len(SYSTEMS)]} {index + 1}"
            leaf = (
                x509.CertificateBuilder()
                .subject_name(
                    x509.Name(
                        [
                            x509.NameAttribute(NameOID.COMMON_NAME, name),
                            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Demo {cvr[:3]} A/S"),
                            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRDK-{cvr}"),
                            x509.NameAttribute(NameOID.COUNTRY_NAME, "DK"),
                        ]
                    )
                )
                .issuer_name(ca_name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_after - dt.timedelta(days=1095))
                .not_valid_after(not_after)
                .sign(ca_key, hashes.SHA256())
            )
            data = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
            import_certificate_file(data, actor="seed_demo", filename=f"demo-{index + 1}.pem")
        self.stdout.write(f"Added {options['count']} demo certificates issued by 'Demo CA'.")
