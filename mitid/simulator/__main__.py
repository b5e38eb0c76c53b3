"""``python -m mitid.simulator``: the server and the operator commands of docs/protocol.md section 8.

Operator commands stand in for people at MitID Erhverv and Digst (making profiles, enabling renewal,
blocking) and for a misbehaving network (faults). They act on the state directory directly, so they work
whether or not the server is running, and print JSON so scripts and tests can read the result.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from mitid.simulator.problems import CONTRACT_CODES
from mitid.simulator.state import (
    CERTIFICATE_TYPES,
    DEFAULT_PIN_COST,
    ENVIRONMENTS,
    PIN_COSTS,
    Store,
    format_pin,
    format_reference_number,
    material_present,
    resolve_state_dir,
    rfc3339,
)

MAX_NAME_LENGTH = 64  # X.520 upper bound for CN and O


class UsageError(Exception):
    """A bad argument or an impossible request: one sentence on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one sentence without the usage block, still with exit status 2."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{self.prog}: {message}")


def _fail(message: str) -> NoReturn:
    message = message.rstrip()
    sys.stderr.write(message + ("" if message.endswith(".") else ".") + "\n")
    raise SystemExit(2)


def _cvr(text: str) -> str:
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"a CVR number is 8 digits, not {text!r}")
    return text


def _name(text: str) -> str:
    # Under a non-UTF-8 locale argv arrives with surrogate escapes; the bytes are what the user typed.
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8").strip()
    except UnicodeError:
        raise argparse.ArgumentTypeError("a name must be UTF-8 text") from None
    if not 1 <= len(text) <= MAX_NAME_LENGTH:
        raise argparse.ArgumentTypeError(f"a name has 1 to {MAX_NAME_LENGTH} characters")
    return text


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, not {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not abs(value) < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, not {text!r}")
    return value


def _count(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"a count is at least 1, not {text!r}")
    return value


def _serial(text: str) -> str:
    cleaned = text.replace(":", "").replace(" ", "").upper().lstrip("0")
    if not cleaned or any(ch not in "0123456789ABCDEF" for ch in cleaned):
        raise argparse.ArgumentTypeError(f"a serial number is hexadecimal, not {text!r}")
    return cleaned


def _fault_path(text: str) -> str:
    return text if text.startswith("/") else "/" + text


def build_parser() -> argparse.ArgumentParser:
    # --state-dir is accepted before or after the command; SUPPRESS keeps the sub-parser from
    # overwriting a value given before the command.
    state = _Parser(add_help=False)
    state.add_argument(
        "--state-dir",
        default=argparse.SUPPRESS,
        help="state directory (default: $MITID_SIMULATOR_STATE or var/simulator)",
    )
    parser = _Parser(prog="python -m mitid.simulator", description=__doc__)
    parser.add_argument("--state-dir", default=None, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    serve = commands.add_parser("serve", parents=[state], help="run the HTTPS API and the OCSP/CRL server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8443, help="HTTPS API port (0: any free port)")
    serve.add_argument("--http-port", type=_port, default=8444, help="OCSP/CRL port (0: any free port)")
    serve.add_argument(
        "--public-http-url", default=None, help="base URL put in certificates (default http://HOST:HTTP-PORT)"
    )
    serve.add_argument(
        "--tls-name",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name (or IP address) the TLS certificate must name, e.g. a compose service name",
    )

    profile = commands.add_parser("create-profile", parents=[state], help="make a certificate profile")
    profile.add_argument("--cvr", type=_cvr, required=True)
    profile.add_argument("--name", type=_name, required=True, help="the certificate's common name")
    profile.add_argument("--organisation-name", type=_name, default=None, help="default: Organisation <CVR>")
    profile.add_argument("--type", choices=CERTIFICATE_TYPES, default="organisation")
    profile.add_argument("--environment", choices=ENVIRONMENTS, default="test")

    for command, text in (("enable-renewal", "allow"), ("disable-renewal", "stop")):
        sub = commands.add_parser(command, parents=[state], help=f"{text} renewal for an organisation")
        sub.add_argument("--cvr", type=_cvr, required=True)

    validity = commands.add_parser("set-validity", parents=[state], help="validity of new certificates")
    which = validity.add_mutually_exclusive_group(required=True)
    which.add_argument("--minutes", type=_positive_float)
    which.add_argument("--default", action="store_true", help="back to 3 years")

    delay = commands.add_parser("set-renewal-delay", parents=[state], help="time a renewal stays in progress")
    delay.add_argument("--seconds", type=_non_negative_float, required=True)

    pin_cost = commands.add_parser(
        "set-pin-cost", parents=[state], help="scrypt work factor for the PINs of new profiles"
    )
    pin_cost.add_argument(
        "--cost",
        type=int,
        choices=PIN_COSTS,
        metavar=f"{PIN_COSTS[0]}-{PIN_COSTS[-1]}",
        required=True,
        help=f"log2 of scrypt's N (default {DEFAULT_PIN_COST}: about 50 ms a PIN; a step doubles or halves)",
    )

    clock = commands.add_parser(
        "set-clock", parents=[state], help="move the simulator's clock (tests: certificates issued earlier)"
    )
    clock.add_argument(
        "--offset",
        type=_finite_float,
        required=True,
        help="seconds added to the machine's time (negative: the past; 0: the machine's time)",
    )

    block = commands.add_parser("block", parents=[state], help="block (revoke) a certificate")
    block.add_argument("--serial", type=_serial, required=True)
    block.add_argument(
        "--reason",
        choices=("unspecified", "keyCompromise", "superseded", "cessationOfOperation"),
        default="unspecified",
    )

    fault = commands.add_parser("fault", parents=[state], help="inject API faults")
    faults = fault.add_subparsers(dest="fault_command", required=True, metavar="KIND", parser_class=_Parser)
    error = faults.add_parser("error", parents=[state], help="answer with a problem")
    error.add_argument("--code", choices=list(CONTRACT_CODES), required=True, metavar="CODE")
    error.add_argument("--retry-after", type=_non_negative_int, default=None)
    slow = faults.add_parser("slow", parents=[state], help="wait before answering")
    slow.add_argument("--seconds", type=_non_negative_float, required=True)
    drop = faults.add_parser("drop", parents=[state], help="close the connection without an answer")
    for sub in (error, slow, drop):
        sub.add_argument("--count", type=_count, default=1)
        sub.add_argument("--path", type=_fault_path, default="", help="prefix of the path after /ENV")
    faults.add_parser("list", parents=[state], help="show pending faults")
    faults.add_parser("clear", parents=[state], help="remove pending faults")

    pool = commands.add_parser(
        "make-key-pool", parents=[state], help="make leaf keys ahead of need, so issuing is quicker"
    )
    pool.add_argument("--count", type=_count, required=True, help="how many keys to add")

    commands.add_parser("status", parents=[state], help="counts and settings")
    return parser


def _open(state_dir: Path) -> Store:
    """The state, with CA material made if this is its first use (pki, and so cryptography, only then)."""
    if not material_present(state_dir):
        from mitid.simulator import pki

        pki.ensure_material(state_dir)
    return Store(state_dir)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Carries out one operator command and returns what it prints."""
    state_dir = resolve_state_dir(args.state_dir)
    command = args.command
    if command == "make-key-pool":  # keys only: no need to make the CA first
        from mitid.simulator import pki

        return {"pooled_keys": pki.make_key_pool(state_dir, args.count)}
    store = _open(state_dir)
    if command == "create-profile":
        organisation_name = args.organisation_name or f"Organisation {args.cvr}"
        with store.write() as conn:
            reference, pin = store.create_profile(
                conn,
                environment=args.environment,
                certificate_type=args.type,
                cvr=args.cvr,
                name=args.name,
                organisation_name=organisation_name,
            )
        return {
            "reference_number": format_reference_number(reference),
            "pin": format_pin(pin),
            "environment": args.environment,
            "cvr": args.cvr,
            "name": args.name,
            "organisation_name": organisation_name,
            "type": args.type,
        }
    if command in ("enable-renewal", "disable-renewal"):
        enabled = command == "enable-renewal"
        with store.write() as conn:
            store.set_renewal_enabled(conn, args.cvr, enabled)
        return {"cvr": args.cvr, "renewal_enabled": enabled}
    if command == "set-validity":
        minutes = None if args.default else args.minutes
        with store.write() as conn:
            store.set_setting(conn, "validity_minutes", None if minutes is None else repr(minutes))
        return {
            "validity_minutes": minutes,
            "validity": "3 years" if minutes is None else f"{minutes:g} minutes",
        }
    if command == "set-renewal-delay":
        with store.write() as conn:
            store.set_setting(conn, "renewal_delay_seconds", repr(args.seconds))
        return {"renewal_delay_seconds": args.seconds}
    if command == "set-pin-cost":
        with store.write() as conn:
            store.set_setting(conn, "pin_cost", str(args.cost))
        return {"pin_cost": args.cost}
    if command == "set-clock":
        with store.write() as conn:
            store.set_setting(conn, "clock_offset_seconds", repr(args.offset) if args.offset else None)
            now = store.now(conn)
        return {"clock_offset_seconds": args.offset, "now": rfc3339(now)}
    if command == "block":
        with store.write() as conn:
            row = store.find_certificate_any_environment(conn, args.serial)
            if row is None:
                raise UsageError(f"No certificate has serial number {args.serial}")
            row = store.block_certificate(conn, str(row["environment"]), args.serial, args.reason)
        return {
            "serial_number": str(row["serial"]),
            "environment": str(row["environment"]),
            "status": "blocked",
            "blocked_at": str(row["blocked_at"]),
            "reason": str(row["block_reason"]),
        }
    if command == "fault":
        return _fault(store, args)
    if command == "status":
        with store.read() as conn:
            return {"state_dir": str(state_dir), **store.status(conn)}
    raise UsageError(f"Unknown command {command}")


def _fault(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    kind = args.fault_command
    with store.write() as conn:
        if kind == "list":
            return {"faults": [fault.as_json() for fault in store.list_faults(conn)]}
        if kind == "clear":
            return {"cleared": store.clear_faults(conn)}
        fault = store.add_fault(
            conn,
            kind=kind,
            count=args.count,
            path=args.path,
            code=getattr(args, "code", None),
            retry_after=getattr(args, "retry_after", None),
            seconds=getattr(args, "seconds", None),
        )
    return {"added": fault.as_json()}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from mitid.simulator.pki import ensure_material, ensure_tls_names
            from mitid.simulator.server import serve

            if args.tls_name:
                ensure_material(resolve_state_dir(args.state_dir))
                ensure_tls_names(resolve_state_dir(args.state_dir), args.tls_name)
            return serve(
                resolve_state_dir(args.state_dir), args.host, args.port, args.http_port, args.public_http_url
            )
        result = run(args)
    except UsageError as error:
        _fail(str(error))
    except (OSError, sqlite3.Error) as error:
        # e.g. a port in use or a state directory that cannot be written
        sys.stderr.write(f"{error}.\n")
        return 1
    _print_json(result)
    return 0


def _print_json(document: dict[str, Any]) -> None:
    """JSON is UTF-8 whatever the locale says; a reader that went away (``| head``) is no error."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8")
    try:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
