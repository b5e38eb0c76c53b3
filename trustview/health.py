"""Health endpoints for load balancers, container healthchecks and monitoring (docs/operations.md).

- /healthz is liveness: the process answers HTTP. It touches neither the database nor the broker, so a
  database outage does not make an orchestrator restart every web process.
- /readyz is readiness: whether this process can serve, that is the database answers and the broker
  accepts a connection (a page may queue a task). Nothing else: a stopped scheduler is no reason to take
  a healthy web process out of service.
- /scheduler is the scheduler's freshness: the renewal sweep has succeeded recently (beat sends it, a
  worker runs it, and it records a SchedulerHeartbeat row), with a grace period after this process
  started. When it is stale, the portal e-mails once per outage (certificates.alerts.scheduler_stopped).
  A stopped scheduler cannot report itself: whoever still runs notices (`watch_scheduler`): a monitor
  polling this endpoint, every worker (beat stopped) and beat (no worker takes its tasks).

All answer JSON without login and never include a host name, user name or password.

`python -m trustview.health probe URL` and `python -m trustview.health sweep` are the same checks for
container healthchecks (docker-compose.yml), which have neither curl nor a browser.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

Check = dict[str, Any]

# When this process started: /scheduler gives beat and a worker a grace period from here.
STARTED_AT = timezone.now()


@login_not_required
@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process is up and serving requests."""
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every check passes, else 503; the body says which check failed."""
    checks = readiness()
    ok = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if ok else "fail", "checks": checks}, status=200 if ok else 503)


def readiness() -> dict[str, Check]:
    """Every readiness check by name: what this process needs to serve."""
    return {"database": check_database(), "broker": check_broker()}


@login_not_required
@never_cache
@require_safe
def scheduler(request: HttpRequest) -> JsonResponse:
    """The scheduler's freshness: 200 while the sweep runs (or within the grace period after start), else
    503, and then a person is told once per outage."""
    try:
        check = watch_scheduler(STARTED_AT, noticed_by="monitor")
    except Exception:  # the database is down, or migrations are not applied yet
        log.exception("Scheduler check: the last sweep could not be read.")
        check = {"ok": False, "error": "the last sweep could not be read (is the database up and migrated?)"}
    return JsonResponse(
        {"status": "ok" if check["ok"] else "fail", "sweep": check}, status=200 if check["ok"] else 503
    )


def watch_scheduler(started_at: dt.datetime, noticed_by: str) -> Check:
    """The sweep's freshness (`check_sweep`); when it is stale past the grace period, the stopped
    scheduler is reported, once per outage. Whoever still runs calls this: a monitor polling /scheduler,
    every worker and beat (trustview/celery.py), each saying who noticed (`noticed_by`)."""
    check = check_sweep(started_at=started_at)
    if not check["ok"] and not check.get("starting"):
        try:
            from certificates.alerts import scheduler_stopped

            scheduler_stopped(_parse(check.get("last_success")), noticed_by=noticed_by)
        except Exception:
            log.exception("Scheduler check: could not record or report the stopped scheduler.")
    return check


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        # The exception may name the server and the user; it goes to the log, not to the caller.
        log.exception("Readiness: the database did not answer.")
        return {"ok": False, "error": "the database did not answer"}
    return {"ok": True}


def check_broker() -> Check:
    """One connection attempt and one quick retry, bounded by a short timeout (a probe must not hang)."""
    from trustview.celery import app

    try:
        with app.connection_for_write(connect_timeout=2) as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, interval_max=0.2)
    except Exception:
        log.exception("Readiness: the broker did not accept a connection.")
        return {"ok": False, "error": "the broker did not accept a connection"}
    return {"ok": True}


def check_sweep(now: dt.datetime | None = None, started_at: dt.datetime | None = None) -> Check:
    """The last successful renewal sweep is at most TRUSTVIEW_SCHEDULER_SWEEP_MARGIN sweep intervals old;
    within TRUSTVIEW_SCHEDULER_GRACE_SECONDS after `started_at` (the web process's start, when given) a
    missing or old sweep still passes, marked `starting`, since beat and a worker may be starting too."""
    from certificates.models import SchedulerHeartbeat

    now = now or timezone.now()
    limit = settings.TRUSTVIEW_SWEEP_SECONDS * settings.TRUSTVIEW_SCHEDULER_SWEEP_MARGIN
    grace = settings.TRUSTVIEW_SCHEDULER_GRACE_SECONDS
    in_grace = started_at is not None and (now - started_at).total_seconds() < grace
    last = (
        SchedulerHeartbeat.objects.filter(name=SchedulerHeartbeat.RENEWAL_SWEEP)
        .values_list("last_success_at", flat=True)
        .first()
    )
    check: Check = {"ok": False, "last_success": None, "max_age_seconds": round(limit)}
    if last is None:
        check["error"] = "no sweep yet"
    else:
        age = max(0.0, (now - last).total_seconds())
        check.update(ok=age <= limit, last_success=last.isoformat(), age_seconds=round(age))
        if not check["ok"]:
            check["error"] = "the last successful sweep is too old (is beat running, and a worker?)"
    if not check["ok"] and in_grace:
        check.update(ok=True, starting=True)
    return check


# --- container healthchecks -------------------------------------------------------------------------


def probe(url: str) -> int:
    """GET URL as a client of the web process would; 0 when it answers 200.

    The Host header is the first of DJANGO_ALLOWED_HOSTS, since Django refuses any other host name.
    """
    allowed = [host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()]
    headers = {}
    if allowed and allowed[0] != "*":
        headers["Host"] = allowed[0].lstrip(".")  # ".example.dk" allows example.dk itself too
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a URL the operator wrote
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            print(response.read(2000).decode(errors="replace"))
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "probe":
        return probe(argv[1])
    if argv == ["sweep"]:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustview.settings")
        django.setup()
        check = check_sweep()
        print(json.dumps(check))
        return 0 if check["ok"] else 1
    print("usage: python -m trustview.health probe URL | sweep", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
