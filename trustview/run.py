"""`python -m trustview.run`: the whole portal on one machine (what `make run` starts).

Starts the MitID Erhverv simulator, makes a demo certificate profile and prints its reference number and
PIN, then runs the web server, a Celery worker and Celery beat. The broker is Redis when REDIS_URL is
set, otherwise one that needs no server (files under var/). Each process's output is prefixed with its
name. Ctrl-C (or SIGTERM) stops them all and exits 0; a process that ends on its own stops the rest and
exits 1. Ctrl-C reaches only this supervisor, which stops the children in order instead of each dying
mid-line: the children run in sessions of their own, and the supervisor takes the terminal's foreground
from `make`, which would otherwise also get the interrupt and report it as a failure.
Set TRUSTVIEW_RUN_SIMULATOR=false when MITID_*_URL point at a real service.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
DEMO_CVR = "12345678"
# One worker for both queues: control tasks ("celery") and order steps ("orders", settings). It is alone,
# so it neither looks for other workers at start (mingle, a second's wait) nor keeps talking to them
# (gossip); the tests start their workers with the same options.
WORKER_OPTIONS = ("--loglevel", "INFO", "-Q", "celery,orders", "--without-mingle", "--without-gossip")


def main() -> int:
    env = environ.Env()
    environ.Env.read_env(BASE_DIR / ".env")
    port = env.int("PORT", default=8000)
    var_dir = Path(env.str("TRUSTVIEW_VAR_DIR", default=str(BASE_DIR / "var")))
    state_dir = env.str("MITID_SIMULATOR_STATE", default=str(var_dir / "simulator"))
    processes: list[tuple[str, subprocess.Popen[str]]] = []

    def stop(*_: object) -> None:
        for _name, process in processes:
            if process.poll() is None:
                process.terminate()

    def asked_to_stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, asked_to_stop)
    give_back_terminal = _take_the_terminal()
    # The children follow this process's port settings (PORT, MITID_SIMULATOR_PORT): settings.py derives
    # TRUSTVIEW_BASE_URL and MITID_*_URL from them unless set.
    os.environ.setdefault("PORT", str(port))
    try:
        if env.bool("TRUSTVIEW_RUN_SIMULATOR", default=True):
            simulator = _start(
                "simulator",
                [
                    sys.executable,
                    "-m",
                    "mitid.simulator",
                    "serve",
                    "--state-dir",
                    state_dir,
                    "--port",
                    env.str("MITID_SIMULATOR_PORT", default="8443"),
                    "--http-port",
                    env.str("MITID_SIMULATOR_HTTP_PORT", default="8444"),
                ],
                processes,
                wait_for_json=True,
            )
            if simulator is None:
                return 1
            _print_demo_profile(state_dir)
        _start(
            "web", [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], processes
        )
        celery = [sys.executable, "-m", "celery", "-A", "trustview"]
        worker = [*celery, "worker", *WORKER_OPTIONS, "--concurrency", "2"]
        _start("worker", worker, processes)
        _start("beat", [*celery, "beat", "--loglevel", "INFO"], processes)
        broker = "Redis at REDIS_URL" if env.str("REDIS_URL", default="") else "embedded (files under var/)"
        print(
            f"\ntrustview is running on http://127.0.0.1:{port}/ with a worker and beat; broker: {broker}."
            " Ctrl-C stops it.\n",
            flush=True,
        )
        while all(process.poll() is None for _name, process in processes):
            time.sleep(0.5)
        ended = [name for name, process in processes if process.poll() is not None]
        print(f"{', '.join(ended)} stopped; stopping the rest.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping trustview...", flush=True)
        return 0
    finally:
        stop()
        for _name, process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        give_back_terminal()


def _take_the_terminal() -> Callable[[], None]:
    """Become the terminal's foreground process group, as a shell does for a job, so that Ctrl-C is
    delivered here only; returns the function that gives the terminal back. Does nothing without a
    terminal, or when started in the background."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return lambda: None
    try:
        previous = os.tcgetpgrp(tty)
        if previous != os.getpgrp():
            raise OSError("not in the foreground")
        os.setpgid(0, 0)
        with _terminal_writes_allowed():
            os.tcsetpgrp(tty, os.getpgrp())
    except OSError:
        os.close(tty)
        return lambda: None

    def give_back() -> None:
        with _terminal_writes_allowed(), contextlib.suppress(OSError):
            os.tcsetpgrp(tty, previous)
        os.close(tty)

    return give_back


@contextlib.contextmanager
def _terminal_writes_allowed() -> Iterator[None]:
    """A background group that sets the terminal's foreground gets SIGTTOU; ignore it meanwhile."""
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTTOU, old)


def _start(
    name: str,
    command: list[str],
    processes: list[tuple[str, subprocess.Popen[str]]],
    wait_for_json: bool = False,
) -> subprocess.Popen[str] | None:
    process = subprocess.Popen(
        command,
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # Ctrl-C in the terminal reaches the supervisor only (see above)
    )
    processes.append((name, process))
    assert process.stdout is not None
    if wait_for_json:
        # The simulator prints one JSON line with its addresses once it is ready.
        for line in process.stdout:
            print(f"{name:>9} | {line}", end="", flush=True)
            if line.lstrip().startswith("{"):
                break
        else:
            print(f"The {name} did not start (see above).", file=sys.stderr)
            return None
    threading.Thread(target=_relay, args=(name, process), daemon=True).start()
    return process


def _relay(name: str, process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        print(f"{name:>9} | {line}", end="", flush=True)


def _simulator(state_dir: str, *args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "mitid.simulator", *args, "--state-dir", state_dir],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    return dict(json.loads(result.stdout))


def _print_demo_profile(state_dir: str) -> None:
    """A fresh profile each start: a PIN is used once, so yesterday's demo PIN is spent."""
    _simulator(state_dir, "enable-renewal", "--cvr", DEMO_CVR)
    profile = _simulator(
        state_dir,
        "create-profile",
        "--cvr",
        DEMO_CVR,
        "--name",
        "Demo lønsystem",
        "--organisation-name",
        "Demo A/S",
        "--type",
        "system",
        "--environment",
        "test",
    )
    print(
        "\n  Demo certificate profile (MitID Erhverv simulator, Test environment):\n"
        f"    Reference number: {profile['reference_number']}\n"
        f"    PIN:              {profile['pin']}\n"
        "  Enter them at /mitid/issue/ to issue an OCES certificate.\n"
        f"  More profiles: .venv/bin/python -m mitid.simulator create-profile --cvr {DEMO_CVR} --name NAME "
        f"--state-dir {state_dir}\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
