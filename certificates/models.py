"""The certificate inventory: organisations, certificates and their append-only history."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.exceptions import EmptyResultSet, ObjectDoesNotExist
from django.core.validators import RegexValidator
from django.db import connection, models, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.expressions import RawSQL
from django.db.models.lookups import IsNull
from django.utils import timezone
from django.utils.translation import gettext

from . import compiled
from .choices import (
    OPEN_ORDER_STATES,
    AlertKind,
    ChannelKind,
    DeliveryState,
    EventKind,
    IncidentKind,
    LifecycleState,
    OcesType,
    OrderKind,
    OrderState,
    Source,
    Status,
    TrustSource,
)
from .choices import Environment as CertEnvironment
from .issuers import handled_by_an_issuer, issuer_for
from .links import object_url
from .situation import RECENT_LAPSE_DAYS, RENEWAL_FAILING_DAYS, RENEWAL_NOT_ENABLED, Facts, Situation

DEFAULT_RENEW_BEFORE = dt.timedelta(days=30)
# The largest id a row can have (BigAutoField, and SQLite's INTEGER).
MAX_ID = 2**63 - 1


def renewal_due_at(
    not_before: dt.datetime, not_after: dt.datetime, renew_before: dt.timedelta
) -> dt.datetime:
    """When a certificate becomes due for renewal (DESIGN.md, renewal policy).

    Normally `renew_before` ahead of expiry. A short-lived certificate, for which that would be half its
    lifetime or more, is due when a third of its lifetime is left, so it is neither renewed at birth
    nor left to the last moment.
    """
    lifetime = not_after - not_before
    if renew_before * 2 >= lifetime:
        return not_after - lifetime / 3
    return not_after - renew_before


class Organization(models.Model):
    """A Danish organisation, known by its CVR number, that holds certificates."""

    cvr = models.CharField(
        "CVR",
        max_length=8,
        unique=True,
        validators=[RegexValidator(r"^\d{8}$", "A CVR number has 8 digits.")],
    )
    name = models.CharField(max_length=200, blank=True)
    renewal_enabled = models.BooleanField(
        "MitID renewal enabled",
        null=True,
        blank=True,
        default=None,
        help_text="Unknown until set here or learnt from MitID Erhverv. Digst enables renewal per "
        "organisation on request by e-mail to mitiderhverv@digst.dk; until then renewals are refused.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "cvr"]

    def __str__(self) -> str:
        return f"{self.name} (CVR {self.cvr})" if self.name else f"CVR {self.cvr}"


class TrustedCA(models.Model):
    """A CA certificate the portal trusts as the top of a chain (a trust anchor, normally a root).

    A certificate counts as verified only when signatures lead from it to one of these (certificates.trust).
    Seeded with the OCES3 test and production roots; settings and administrators add more.
    """

    name = models.CharField(max_length=255)
    subject_dn = models.TextField("subject")
    fingerprint_sha256 = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    not_after = models.DateTimeField("valid to")
    pem = models.TextField("certificate (PEM)")
    source = models.CharField(max_length=16, choices=TrustSource.choices, default=TrustSource.ADDED)
    # A shipped root that an administrator removed stays as a row with enabled off, so that seeding it
    # again at the next migrate (certificates.trust.install_builtin_roots) does not bring it back.
    enabled = models.BooleanField(default=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "trusted CA"
        verbose_name_plural = "trusted CAs"

    def __str__(self) -> str:
        return self.name

    @property
    def fingerprint_display(self) -> str:
        return _colon_pairs(self.fingerprint_sha256)


def organisation_limit(user: AbstractUser | AnonymousUser) -> models.QuerySet[Organization] | None:
    """The organisations a user is limited to, or None when they may see all (superusers always may).

    The limit is the user's `organisation_limit` (a one-to-one row that the accounts app defines and the
    Users page edits); `certificates` reads it by that name only, and so depends on no other app.
    """
    if not user.is_authenticated or getattr(user, "is_superuser", False):
        return None
    try:
        limit = user.organisation_limit  # type: ignore[attr-defined]
    except (AttributeError, ObjectDoesNotExist):
        return None
    return Organization.objects.filter(pk__in=limit.organizations.values("pk"))


class CertificateQuerySet(models.QuerySet["Certificate"]):
    """Every derived state of a certificate is defined here, once, from its columns and the clock (never
    stored). The list, the dashboard, the alerts, the revocation check and the sweep all ask these.

    - current: active (not superseded, not blocked) and not yet expired: what someone relies on today.
    - live: not blocked and not yet expired, superseded or not: still usable, so still worth an OCSP check.
    - expiring: current and expiring within TRUSTVIEW_EXPIRING_DAYS (the one "expiring" window).
    - lapsed: expired while active, that is without a renewal superseding it.
    - renewing / renewal failing: from the certificate's open or recently failed renewal orders.
    """

    def for_user(self, user: AbstractUser | AnonymousUser) -> CertificateQuerySet:
        """The certificates `user` may see: none without the view permission; with an organisation
        limit, only those of the user's organisations. Every page, count and action starts here."""
        if not user.has_perm("certificates.view_certificate"):
            return self.none()
        limit = organisation_limit(user)
        return self if limit is None else self.filter(organization__in=limit)

    def expired(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        return self.filter(not_after__lte=now or timezone.now())

    def unexpired(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        return self.filter(not_after__gt=now or timezone.now())

    def current(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Active and unexpired: the certificates in use that alerts and renewals look after."""
        return self.filter(_current(now or timezone.now()))

    def live(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Not blocked and unexpired, superseded ones included: still usable, so a revocation matters."""
        return self.filter(_live(now or timezone.now()))

    def revocation_check_due(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Live certificates that verified to a trusted root (only their CRL and OCSP addresses are asked)
        and were not checked within TRUSTVIEW_REVOCATION_RECHECK_SECONDS, or never."""
        now = now or timezone.now()
        since = now - dt.timedelta(seconds=settings.TRUSTVIEW_REVOCATION_RECHECK_SECONDS)
        return self.filter(_live(now), chain_verified=True).filter(
            Q(revocation_checked_at__isnull=True) | Q(revocation_checked_at__lt=since)
        )

    def lapsed(self, now: dt.datetime | None = None, since: dt.datetime | None = None) -> CertificateQuerySet:
        """Expired without a renewal superseding them (optionally: expired after `since`)."""
        condition = _lapsed(now or timezone.now())
        return self.filter(condition, not_after__gt=since) if since else self.filter(condition)

    def expiring(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Current certificates within the expiring window (TRUSTVIEW_EXPIRING_DAYS)."""
        return self.of_status(Status.EXPIRING, now)

    def expiring_within(self, days: int, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Unexpired certificates whose not_after falls within `days` from now."""
        now = now or timezone.now()
        return self.filter(not_after__gt=now, not_after__lte=now + dt.timedelta(days=days))

    def with_status(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Annotate `status` (a Status value): blocked, else expired, else superseded, else not yet
        valid, else expiring, else valid (the conditions exclude each other: see _status_condition)."""
        now = now or timezone.now()
        return self.annotate(
            status=Case(
                *[When(_status_condition(status, now), then=Value(status.value)) for status in Status],
                output_field=models.CharField(),
            )
        )

    def of_status(self, status: Status | str, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Certificates whose `with_status` would be `status`, as plain column conditions (index-friendly)."""
        return self.filter(_status_condition(Status(status), now or timezone.now()))

    def due_for_renewal(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Active, auto-renewing certificates with a key whose renewal is due (renew_at, indexed), with no
        open renewal order and no renewal that failed recently (a failure waits for a person, or for the
        retry interval, instead of failing again at every sweep)."""
        now = now or timezone.now()
        retry_failed_after = now - dt.timedelta(hours=settings.TRUSTVIEW_FAILED_RENEWAL_RETRY_HOURS)
        renewals = Order.objects.filter(certificate=OuterRef("pk"), kind=OrderKind.RENEW)
        # A refusal for "renewal not enabled" stops counting once an administrator has marked the
        # organisation enabled (Digst has answered): the next sweep tries again.
        # The organisation is asked with a correlated EXISTS on the certificate's organisation_id (not a
        # join inside the NOT EXISTS, which PostgreSQL ran as a nested loop over every recent failure).
        enabled_since = Exists(
            Organization.objects.filter(pk=OuterRef(OuterRef("organization_id")), renewal_enabled=True)
        )
        recent_failures = renewals.filter(
            state=OrderState.FAILED, completed_at__gt=retry_failed_after
        ).exclude(Q(last_error_code=RENEWAL_NOT_ENABLED) & Q(enabled_since))
        return (
            self.filter(_current(now), auto_renew=True, renew_at__lte=now)
            .exclude(private_key_encrypted="")
            .filter(~_renewing())
            .filter(~Exists(recent_failures))
        )

    def for_listing(self) -> CertificateQuerySet:
        """Leave the large columns (PEM, chain, key) in the database; say only whether a key is held."""
        return self.defer("pem", "chain_pem", "private_key_encrypted", "subject_dn", "issuer_dn").annotate(
            holds_key=ExpressionWrapper(~Q(private_key_encrypted=""), output_field=models.BooleanField())
        )

    def with_renewal_state(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Annotate `renewing` (an open renewal order), `renewal_failing` and `renewal_late` (see those
        methods)."""
        now = now or timezone.now()
        return self.annotate(
            renewing=_renewing(),
            renewal_failing=ExpressionWrapper(_renewal_failing(now), output_field=models.BooleanField()),
            renewal_late=ExpressionWrapper(_renewal_late(now), output_field=models.BooleanField()),
        )

    def with_situation(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Everything `Certificate.situation` needs, read in the same query (a list of any length asks
        each row's situation without a query per row; with `for_listing`, the key stays deferred)."""
        return (
            self.with_renewal_state(now)
            .annotate(
                has_successor=ExpressionWrapper(Q(_successor_is(False)), output_field=models.BooleanField())
            )
            .select_related("organization")
        )

    def renewal_overdue(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Current certificates the portal should renew (auto-renew on, key held) whose renewal has been
        due for longer than TRUSTVIEW_RENEWAL_LATE_HOURS, whatever the reason (failing ones too: the
        late-renewal alert tells of them all)."""
        return self.filter(_renewal_overdue(now or timezone.now()))

    def renewal_late(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Overdue (see `renewal_overdue`) and not "renewal failing": the situation "renewal late"."""
        return self.filter(_renewal_late(now or timezone.now()))

    def not_renewed_automatically(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Current certificates that are expiring or due for renewal, that the portal will not renew by
        itself (auto-renew off, no key, a CA certificate, renewal not enabled, no connected CA), and that
        no renewal is running for."""
        return self.filter(_not_renewed_automatically(now or timezone.now()))

    def by_urgency(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Most urgent first: expired without a renewal, renewal failing, renewal late, expiring without
        automatic renewal, blocked; then the soonest expiry."""
        now = now or timezone.now()
        return self.annotate(
            urgency=Case(
                When(_lapsed(now), then=Value(0)),
                When(_renewal_failing(now), then=Value(1)),
                When(_renewal_late(now), then=Value(2)),
                When(_not_renewed_automatically(now), then=Value(3)),
                When(state=LifecycleState.BLOCKED, then=Value(4)),
                default=Value(5),
                output_field=models.IntegerField(),
            )
        ).order_by("urgency", "not_after", "id")

    def renewing(self) -> CertificateQuerySet:
        """Certificates with a renewal order in progress."""
        return self.filter(_renewing())

    def renewal_failing(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Current certificates whose renewal is retrying after errors, or failed in the last
        RENEWAL_FAILING_DAYS days (once a certificate has lapsed, it counts as lapsed instead)."""
        return self.filter(_renewal_failing(now or timezone.now()))

    def needs_attention(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """What a person must act on: lapsed within the last RECENT_LAPSE_DAYS, renewal failing or late,
        expiring (or due) without automatic renewal, or blocked while still within its validity and not
        replaced. (Situation.needs_attention says the same of one certificate.)"""
        return self.filter(_needs_attention(now or timezone.now()))

    def attention_overview(
        self, now: dt.datetime | None = None, limit: int = 10, count_up_to: int = 100
    ) -> tuple[list[Certificate], int, int]:
        """The first `limit` of `needs_attention(now).by_urgency(now)`, read `with_situation` and
        `for_listing`, and how many need attention, counted up to `count_up_to` + 1 (that many means
        "more than `count_up_to`"). One query per kind of urgency reads at most `count_up_to` + 1 ids in
        expiry order from that kind's index range, and one more reads the rows shown: ordering every
        certificate that needs attention by its urgency read them all (tens of thousands at a million
        certificates), and one query of the whole condition took PostgreSQL longer to plan than to run.
        Third, how many have a failing renewal (`renewal_failing(now)`, the dashboard's card), counted in
        the same read of that kind: every one of them must be read to order them anyway."""
        now = now or timezone.now()
        # The kinds' reads as one statement (UNION ALL of each kind's first ids); the failing renewals'
        # certificates as a subquery of the few orders. Each kind's query is compiled once per shape
        # (certificates.compiled): compiling the five took Django longer than running them.
        selects: list[str] = []
        params: list[Any] = []
        viewer = self._shape_key()

        def kind(urgency: int) -> compiled.Build:
            def build(now: dt.datetime, _: Sequence[int]) -> models.QuerySet[Any]:
                branch = _attention_branches(now, _failing_renewal_certificates(now))[urgency]
                ids: models.QuerySet[Any] = self.filter(branch).order_by("not_after", "id")
                if urgency == _FAILING_KIND:  # that kind is `renewal_failing(now)`: all of it is counted
                    ids = ids.annotate(kind_total=Window(Count("pk"))).values_list(
                        "not_after", "pk", "kind_total"
                    )
                else:
                    ids = ids.values_list("not_after", "pk")
                return ids[: count_up_to + 1]

            return build

        for urgency in range(len(_ATTENTION_KINDS)):
            query = compiled.sql_with_params(("attention", urgency, count_up_to, viewer), kind(urgency), now)
            if query is None:  # none to see
                continue
            sql, branch_params = query
            total = f"kind{urgency}.kind_total" if urgency == _FAILING_KIND else "NULL"
            selects.append(
                f"SELECT {urgency} AS urgency, kind{urgency}.not_after, kind{urgency}.pk, {total} AS total "  # noqa: S608
                f"FROM ({sql}) kind{urgency}"
            )
            params += branch_params
        # Ranked in the same statement (most urgent kind, then soonest expiry), so only the shown rows come
        # back, with how many were read (at most count_up_to + 1 per kind) and the failing renewals' count.
        shown: list[int] = []
        found = failing = 0
        if selects:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT ranked.pk, COUNT(*) OVER (), MAX(ranked.total) OVER () "  # noqa: S608
                    f"FROM ({' UNION ALL '.join(selects)}) ranked "
                    "ORDER BY ranked.urgency, ranked.not_after, ranked.pk LIMIT %s",
                    [*params, max(limit, 1)],
                )
                rows = cursor.fetchall()
            shown = [pk for pk, _, _ in rows]
            if rows:
                found, failing = rows[0][1], rows[0][2] or 0
        shown = shown[:limit]

        def shown_rows(now: dt.datetime, ids: Sequence[int]) -> models.QuerySet[Any]:
            return self.filter(pk__in=ids).with_situation(now).for_listing()

        read = {row.pk: row for row in compiled.instances(("attention rows", viewer), shown_rows, now, shown)}
        return [read[pk] for pk in shown if pk in read], min(found, count_up_to + 1), failing

    def for_page(self, pk: int, now: dt.datetime | None = None) -> Certificate | None:
        """The certificate `pk` among these, `with_status` and `with_situation` and with the certificate
        it renewed, as its page shows it (None: not among these). Compiled once per shape
        (certificates.compiled): the annotations took Django longer to compile than to run."""

        def build(now: dt.datetime, ids: Sequence[int]) -> models.QuerySet[Any]:
            return self.with_status(now).with_situation(now).select_related("renewed_from").filter(pk=ids[0])

        if not 0 < pk <= MAX_ID:  # no row has it (and bound as it is, a huge one would not fit the column)
            return None
        found = compiled.instances(("page", self._shape_key()), build, now or timezone.now(), [pk])
        return found[0] if found else None

    def _shape_key(self) -> tuple[str, tuple[Any, ...]]:
        """What `self` selects, as SQL and parameters: the part of a compiled shape's key that says whose
        certificates (`for_user`) a query starts from (certificates.compiled)."""
        try:
            sql, params = self.order_by().values("pk").query.sql_with_params()
        except EmptyResultSet:
            return "", ()
        return sql, tuple(params)

    def state_counts(self, now: dt.datetime | None = None) -> dict[str, int]:
        """How many certificates are in each state the dashboard shows, from the same conditions as the
        methods above (so a card and its list never disagree), in four queries: one aggregate of the
        conditions on a certificate's own columns, and one count for each condition on its orders. As a
        WHERE, such a condition lets the database start from the few open or failed orders; inside one
        aggregate it asked the orders about every certificate (seconds at a million certificates)."""
        now = now or timezone.now()
        critical = now + dt.timedelta(days=settings.TRUSTVIEW_CRITICAL_DAYS)

        def count(condition: Q) -> Count:
            return Count("pk", filter=condition)

        counts: dict[str, int] = self.aggregate(
            valid=count(_status_condition(Status.VALID, now)),
            expiring=count(_status_condition(Status.EXPIRING, now)),
            critical=count(_status_condition(Status.EXPIRING, now) & Q(not_after__lte=critical)),
            lapsed=count(_lapsed(now)),
            blocked=count(_status_condition(Status.BLOCKED, now)),
        )
        counts["renewal_failing"] = self.filter(_renewal_failing(now)).count()
        counts["renewing"] = self.filter(_renewing()).count()
        counts["needs_attention"] = self.filter(_needs_attention(now)).count()
        return counts

    def tallied_state_counts(
        self,
        now: dt.datetime | None = None,
        organisations: models.QuerySet[Organization] | None = None,
        also: dict[str, ExpiryWindow] | None = None,
        renewal_failing: int | None = None,
    ) -> dict[str, int]:
        """`state_counts` but "needs attention" (see `attention_overview`), with the five counts on a
        certificate's own columns (valid, expiring, critical,
        lapsed, blocked) summed from ExpiryTally instead of counted row by row, so their cost follows the
        days, not the certificates. `self` must be `for_user(user)` and `organisations` that user's
        `organisation_limit` (None: every certificate). The windows `also` are counted in the same
        queries (the dashboard's chart). `renewal_failing`: that count when already known
        (`attention_overview` counts it)."""
        now = now or timezone.now()

        def renewing(now: dt.datetime, ids: Sequence[int]) -> models.QuerySet[Any]:
            return self.filter(_renewing()).order_by().values("pk")

        # Compiled once per shape (certificates.compiled), as the dashboard's other queries.
        query = compiled.sql_with_params(("renewing", self._shape_key()), renewing, now)
        counted: dict[str, models.QuerySet[Any] | tuple[str, list[Any]]] = {
            "renewing": self.none() if query is None else query
        }
        if renewal_failing is None:
            # From the few failing orders, then an index lookup each (see _attention_candidates).
            failing = _renewal_failing(now) & Q(pk__in=_failing_renewal_certificates(now))
            counted["renewal_failing"] = self.filter(failing)
        counts = self.count_by_expiry({**_state_windows(now), **(also or {})}, organisations, counted=counted)
        return counts if renewal_failing is None else {**counts, "renewal_failing": renewal_failing}

    def count_by_expiry(
        self,
        windows: dict[str, ExpiryWindow],
        organisations: models.QuerySet[Organization] | None = None,
        counted: dict[str, models.QuerySet[Any] | tuple[str, list[Any]]] | None = None,
    ) -> dict[str, int]:
        """How many certificates fall in each window (a state and a range of not_after), in one statement
        whatever the inventory size: the UTC days the windows touch are summed from ExpiryTally (rows per
        day, for every certificate or per organisation) in one pass; the part of a day before a window's
        start is taken off and the part of a day before its end added, each counted as an index range of
        at most a day of `cert_state_expiry_idx` (state, not_after, organisation: in the index alone, not
        the table). Windows that meet share that count (a month's end is the next month's start; "now" is
        the start or end of four windows), so a dashboard counts about 15 such ranges. The few certificates
        not yet valid are counted through `cert_not_before_idx`. `self` and `organisations` must describe
        the same certificates (see `tallied_state_counts`). The querysets `counted` are counted in the
        same statement (or the SQL of their ids and its parameters)."""
        # The conditions are written as SQL here (parameters only): as Q objects, the two dozen windows
        # of a dashboard took Django longer to compile than the database took to answer.
        counts = dict.fromkeys([*windows, *(counted or {})], 0)
        if self.query.is_empty() or (organisations is not None and organisations.query.is_empty()):
            return counts
        ops = connection.ops
        tally_table = ops.quote_name(ExpiryTally._meta.db_table)
        if organisations is None:
            scope_sql, scope_params = "scope = %s", [ExpiryTally.EVERY_CERTIFICATE]
        else:
            inner, inner_params = organisations.order_by().values("pk").query.sql_with_params()
            scope_sql, scope_params = f"scope IN ({inner})", list(inner_params)
        sums: list[tuple[str, list[Any]]] = []  # the tally's sums, one pass
        parts: dict[tuple[str, tuple[Any, ...]], int] = {}  # each scalar subquery once: its column
        uses: list[tuple[str, str, int]] = []  # (window, column, sign)

        def column(sql: str, params: list[Any]) -> str:
            return f"c{parts.setdefault((sql, tuple(params)), len(parts))}"

        # What `self` holds, compiled once; each edge filters it. PostgreSQL and SQLite pull such a
        # subquery up, so an edge reads only the indexed columns it names, in the index alone.
        columns = self.order_by().values("state", "not_after", "not_before")
        selected, selected_params = columns.query.sql_with_params()

        def edge_count(condition: str, params: list[Any]) -> str:
            sql = f"SELECT COUNT(*) FROM ({selected}) edge WHERE {condition}"  # noqa: S608
            return column(sql, [*selected_params, *params])

        def after_range(start: dt.datetime | None, end: dt.datetime | None) -> tuple[str, list[Any]]:
            sql, params = [], []
            if start is not None:
                sql.append("edge.not_after >= %s")
                params.append(ops.adapt_datetimefield_value(start))
            if end is not None:
                sql.append("edge.not_after < %s")
                params.append(ops.adapt_datetimefield_value(end))
            return " AND ".join(sql) or "1 = 1", params

        for name, window in windows.items():
            (first, stop), edges = _tally_days(window.start, window.end)
            if first is None or stop is None or first < stop:
                conditions, params = ["state = %s"], list[Any]([window.state])
                for condition, day in (("day >= %s", first), ("day < %s", stop)):
                    if day is not None:
                        conditions.append(condition)
                        params.append(ops.adapt_datefield_value(day))
                sql = " AND ".join(conditions)
                sums.append((f"SUM(CASE WHEN {sql} THEN certificates ELSE 0 END)", params))
                uses.append((name, f"t{len(sums) - 1}", 1))
            for start, end, sign in edges:
                sql, params = after_range(start, end)
                uses.append((name, edge_count(f"edge.state = %s AND {sql}", [window.state, *params]), sign))
            if window.started_by is not None:
                sql, params = after_range(window.start, window.end)
                condition = f"edge.state = %s AND edge.not_before > %s AND {sql}"
                started_by = ops.adapt_datetimefield_value(window.started_by)
                uses.append((name, edge_count(condition, [window.state, started_by, *params]), -1))
        for name, queryset in (counted or {}).items():
            if isinstance(queryset, tuple):  # the SQL of the ids already, and its parameters
                ids_sql, ids_params = queryset[0], list(queryset[1])
            elif queryset.query.is_empty():
                continue
            else:
                ids_sql, compiled_params = queryset.order_by().values("pk").query.sql_with_params()
                ids_params = list(compiled_params)
            uses.append((name, column(f"SELECT COUNT(*) FROM ({ids_sql}) counted", ids_params), 1))  # noqa: S608
        if not sums and not parts:
            return counts
        selects = [f"tally.t{index} AS t{index}" for index in range(len(sums))]
        selects += [f"({sql}) AS c{index}" for index, (sql, _) in enumerate(parts)]
        # In the order of the text: the select list's subqueries, then the tally's sums and scope.
        params = [param for _, params in parts for param in params]
        params += [param for _, params in sums for param in params] + scope_params
        tally = (
            ", ".join(f"{sql} AS t{index}" for index, (sql, _) in enumerate(sums)) or "COUNT(*) AS t"
        )  # one row, always
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(selects)} FROM (SELECT {tally} FROM {tally_table} "  # noqa: S608
                f"WHERE {scope_sql}) tally",
                params,
            )
            names = [description[0] for description in cursor.description]
            found = dict(zip(names, cursor.fetchone(), strict=True))
        for name, alias, sign in uses:
            counts[name] += sign * int(found[alias] or 0)
        return counts

    def search(self, text: str) -> CertificateQuerySet:
        """The certificates that match what was typed, looked up by what it looks like (SearchTerms):
        a CVR in the CVR index, a UUID in the UUID index, a reference number through its certificate
        profiles, the start of a serial number or fingerprint in their prefix indexes, and words in the
        common name (a trigram index on PostgreSQL) or the organisation's name. One query, or two when the
        terms must first be turned into certificate or organisation ids (so each part can use its index)."""
        terms = SearchTerms.parse(text)
        if terms is None:
            return self
        condition = Q(pk__in=[])
        if terms.cvr:
            condition |= Q(cvr=terms.cvr)
        if terms.oces_uuid:
            condition |= Q(oces_uuid=terms.oces_uuid)
        if terms.hex_prefix:
            condition |= Q(serial_number__startswith=terms.hex_prefix)
            condition |= Q(fingerprint_sha256__startswith=terms.hex_prefix)
        if terms.reference:
            # Through the issuer's profiles (mitid's CertificateProfile.certificates), by relation name:
            # `certificates` imports no other app. Ids first, so the OR below stays an index lookup.
            condition |= Q(pk__in=list(_ids_with_reference(terms.reference)))
        if terms.words:
            condition |= _in_organisations_named(terms.words)
            if connection.vendor == "postgresql":
                # Whole words first (a full-text index); parts of words (the trigram index) only when
                # those find less than a page: a common word's trigrams each list a good part of the
                # inventory, its full-text entry only the certificates that have the word. So a page of
                # whole-word matches leaves out names that have the words only inside longer ones.
                condition |= _cn_has_words(terms.words)
                if self.filter(condition).order_by().values("pk")[: settings.TRUSTVIEW_PAGE_SIZE].count() >= (
                    settings.TRUSTVIEW_PAGE_SIZE
                ):
                    return self.filter(condition)
            condition |= Q(subject_cn__icontains=terms.words)
        return self.filter(condition)


# A word search looks up the organisations whose name matches first (a trigram index on PostgreSQL), and
# hands up to this many ids to the certificate query, where each is an index lookup: as one array on
# PostgreSQL, as that many parameters elsewhere. More, and the certificate query joins the organisations.
ORGANISATION_MATCH_LIMIT = 200
ORGANISATION_ARRAY_LIMIT = 10_000
_CVR = re.compile(r"^(?:CVR:?|NTRDK-|DK)?(\d{8})$", re.IGNORECASE)
_UUID = re.compile(
    r"^(?:UI:DK-[A-Z]:G:)?([0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12})$", re.I
)
_REFERENCE = re.compile(r"^\d{3,6}(?:[ -]\d{3,6})+$")
_HEX = re.compile(r"^[0-9A-F]+$")


@dataclass(frozen=True)
class SearchTerms:
    """What a search text asks for, by its shape (each field set is one indexed look-up, ORed):

    - 8 digits (or CVR:, DK, NTRDK- and 8 digits): an exact CVR, nothing else.
    - a UUID (or the subject serialNumber UI:DK-O:G:uuid): the OCES certificate UUID.
    - digit groups separated by spaces or dashes ("4821 7730 1290"): a MitID reference number.
    - 9 or more digits: a reference number, or the start of a serial number or fingerprint.
    - hexadecimal, with colons or at least 8 long: the start of a serial number or fingerprint.
    - anything else: words in the common name or the organisation's name; short hexadecimal words
      ("cafe", "123") are also tried as the start of a serial number or fingerprint.
    """

    cvr: str = ""
    oces_uuid: uuid.UUID | None = None
    reference: str = ""
    hex_prefix: str = ""
    words: str = ""

    @classmethod
    def parse(cls, text: str) -> SearchTerms | None:
        """The terms of `text`, or None when there is nothing to search for."""
        text = " ".join(text.split())
        if not text:
            return None
        compact = text.replace(" ", "")
        if match := _CVR.match(compact):
            return cls(cvr=match.group(1))
        if match := _UUID.match(compact):
            return cls(oces_uuid=uuid.UUID(match.group(1)))
        if _REFERENCE.match(text):
            return cls(reference=text.replace(" ", "").replace("-", ""))
        hex_text = compact.replace(":", "").upper()
        if compact.isdigit() and len(compact) >= 9:
            return cls(reference=compact, hex_prefix=hex_text)
        if _HEX.match(hex_text) and (":" in compact or len(hex_text) >= 8):
            return cls(hex_prefix=hex_text)
        if _HEX.match(hex_text):
            return cls(hex_prefix=hex_text, words=text)
        return cls(words=text)


# The words of a common name, as its full-text index holds them: host names, hyphenated and dotted names
# are words apart ("api.aarhus.dk": api, aarhus, dk). A function (migration 0021, which says which
# separators) the planner is told is dear, so that it works them out for as few names as it can.
_CN_WORDS = "certificate_cn_words({column})"


def _cn_has_words(text: str) -> Q:
    """Common names that have every word of `text` as a whole word (in any order), through the
    full-text index cert_cn_words_idx (PostgreSQL). Whole words only: a prefix (`word:*`) made
    PostgreSQL walk every entry that starts with it, slower than the trigram index."""
    words = re.findall(r"[^\W_]+", text.lower())
    if not words:
        return Q(pk__in=[])
    column = (
        f"{connection.ops.quote_name(Certificate._meta.db_table)}.{connection.ops.quote_name('subject_cn')}"
    )
    query = " & ".join(words)
    matches = _CN_WORDS.format(column=column) + " @@ to_tsquery('simple'::regconfig, %s)"
    return Q(RawSQL(matches, [query], output_field=models.BooleanField()))  # noqa: S611


def _in_organisations_named(words: str) -> Q:
    """Certificates of the organisations whose name contains `words`, those looked up first. On
    PostgreSQL their ids are one array parameter (up to ORGANISATION_ARRAY_LIMIT): the planner estimates
    the rows from the ids themselves, and the organisation index joins the words index in a BitmapOr. As a
    join, the OR of the organisation's name and the common name's words was tested row by row, and a count
    for a common place name ("Kolding", 1,200 organisations) read 175,000 certificates (1.5 s at
    1,000,000); as an array from a subquery, the planner would guess ten organisations whatever matched."""
    named = Organization.objects.filter(name__icontains=words).order_by().values_list("pk", flat=True)
    limit = ORGANISATION_ARRAY_LIMIT if connection.vendor == "postgresql" else ORGANISATION_MATCH_LIMIT
    ids = list(named[: limit + 1])
    if len(ids) > limit:  # words that common: a page of them comes soon in expiry order
        return Q(organization__name__icontains=words)
    if connection.vendor != "postgresql" or not ids:
        return Q(organization_id__in=ids)
    quote = connection.ops.quote_name
    column = f"{quote(Certificate._meta.db_table)}.{quote('organization_id')}"
    return Q(RawSQL(f"{column} = ANY(%s)", [ids], output_field=models.BooleanField()))  # noqa: S611


def _ids_with_reference(reference: str) -> models.QuerySet[Any]:
    profiles = Certificate.mitid_profiles.through
    return profiles.objects.filter(certificateprofile__reference_number=reference).values_list(
        "certificate_id", flat=True
    )[:1000]


def _current(now: dt.datetime) -> Q:
    return Q(state=LifecycleState.ACTIVE, not_after__gt=now)


def _live(now: dt.datetime) -> Q:
    return ~Q(state=LifecycleState.BLOCKED) & Q(not_after__gt=now)


def _lapsed(now: dt.datetime) -> Q:
    return Q(state=LifecycleState.ACTIVE, not_after__lte=now)


def _renewing() -> Exists:
    return Exists(
        Order.objects.filter(certificate=OuterRef("pk"), kind=OrderKind.RENEW, state__in=OPEN_ORDER_STATES)
    )


def _renewal_failing(now: dt.datetime) -> Q:
    failing = Order.objects.filter(certificate=OuterRef("pk"), kind=OrderKind.RENEW).filter(
        Q(state__in=OPEN_ORDER_STATES, attempts__gt=0)
        | Q(state=OrderState.FAILED, completed_at__gt=now - dt.timedelta(days=RENEWAL_FAILING_DAYS))
    )
    return _current(now) & Q(Exists(failing))


def _renewal_overdue(now: dt.datetime) -> Q:
    late_since = now - dt.timedelta(hours=settings.TRUSTVIEW_RENEWAL_LATE_HOURS)
    return _current(now) & Q(auto_renew=True, renew_at__lte=late_since) & ~Q(private_key_encrypted="")


def _renewal_late(now: dt.datetime) -> Q:
    """Overdue, for a certificate the portal renews by itself, and not failing (a failing renewal is
    shown as that: it says more; one the portal does not renew says why instead)."""
    return _renewal_overdue(now) & _auto_renewable() & ~_renewal_failing(now)


def _auto_renewable() -> Q:
    """The portal renews these by itself (Situation's `not_renewed_because` is empty for them)."""
    return (
        Q(auto_renew=True, is_ca=False)
        & ~Q(private_key_encrypted="")
        & ~Q(organization__renewal_enabled=False)
        & handled_by_an_issuer()
    )


def _not_renewed_automatically(now: dt.datetime) -> Q:
    soon = now + dt.timedelta(days=settings.TRUSTVIEW_EXPIRING_DAYS)
    return (
        _current(now)
        & Q(not_before__lte=now)
        & (Q(not_after__lte=soon) | Q(renew_at__lte=now))
        & ~_auto_renewable()
        & ~Q(_renewing())
        & ~_renewal_failing(now)
    )


def _needs_attention(now: dt.datetime) -> Q:
    failing = _failing_renewal_ids(now)
    condition = Q(pk__in=[])
    for branch in _attention_branches(now, failing):
        condition |= branch
    return _attention_candidates(now, failing) & condition


# The kind of urgency of `_attention_branches` that is `_renewal_failing` (the failing renewals).
_FAILING_KIND = 1
# The kinds of urgency of `_attention_branches`, in order.
_ATTENTION_KINDS = ("lapsed", "renewal failing", "renewal late", "not renewed automatically", "blocked")


def _attention_branches(now: dt.datetime, failing: list[int] | models.QuerySet[Any]) -> list[Q]:
    """What needs attention, in the order of urgency (`by_urgency`); a certificate meets one at most.
    `failing`: _failing_renewal_ids(now), the certificates with a failing renewal order, so the second is
    `_renewal_failing(now)` without asking the orders again."""
    return [
        _lapsed(now) & Q(not_after__gt=now - dt.timedelta(days=RECENT_LAPSE_DAYS)),
        _current(now) & Q(pk__in=failing),
        _renewal_late(now),
        _not_renewed_automatically(now),
        Q(state=LifecycleState.BLOCKED, not_after__gt=now) & Q(_successor_is(None)),
    ]


def _successor_is(missing: bool | None) -> IsNull:
    """Whether a certificate has no renewal (`missing` true or None) or has one (false), asked per row
    through the unique renewed_from index as a scalar subquery: as an EXISTS, PostgreSQL read every
    renewal in the inventory into a hash for a page of ten rows (or inside an OR)."""
    successor = Certificate.objects.filter(renewed_from=OuterRef("pk")).order_by().values("pk")[:1]
    return IsNull(Subquery(successor), missing is not False)


def _attention_candidates(now: dt.datetime, failing: list[int] | models.QuerySet[Any]) -> Q:
    """A superset of what needs attention that the database finds through indexes alone: each branch of
    `_needs_attention` implies one of these. The failing renewals' certificates are looked up first, from
    the few open or recently failed orders, and given as ids; the rest are index ranges (the expiry window,
    the active certificates due for renewal, the unexpired blocked ones). Without it, PostgreSQL asked
    every current certificate about its orders."""
    soon = now + dt.timedelta(days=settings.TRUSTVIEW_EXPIRING_DAYS)
    recent = now - dt.timedelta(days=RECENT_LAPSE_DAYS)
    return (
        Q(state=LifecycleState.ACTIVE, not_after__gt=recent, not_after__lte=soon)
        | Q(state=LifecycleState.ACTIVE, not_after__gt=now, renew_at__lte=now)
        | Q(state=LifecycleState.BLOCKED, not_after__gt=now)
        | Q(pk__in=failing)
    )


def _failing_renewal_ids(now: dt.datetime) -> list[int] | models.QuerySet[Any]:
    """The certificates with a failing renewal order (see `_renewal_failing`), read first from the orders."""
    return _few_ids(_failing_renewal_certificates(now))


def _failing_renewal_certificates(now: dt.datetime) -> models.QuerySet[Any]:
    """The ids of the certificates with a failing renewal order, as a subquery of the orders."""
    failing = Order.objects.filter(kind=OrderKind.RENEW).filter(
        Q(state__in=OPEN_ORDER_STATES, attempts__gt=0)
        | Q(state=OrderState.FAILED, completed_at__gt=now - dt.timedelta(days=RENEWAL_FAILING_DAYS))
    )
    return failing.order_by().values_list("certificate_id", flat=True).distinct()


# Ids that a query hands to another as a list (each an index lookup there) when there are at most this
# many; more, and the second query gets the first as a subquery instead.
FEW_IDS = 1000


def _few_ids(ids: models.QuerySet[Any]) -> list[int] | models.QuerySet[Any]:
    found = list(ids[: FEW_IDS + 1])
    return ids if len(found) > FEW_IDS else found


def _status_condition(status: Status, now: dt.datetime) -> Q:
    """The columns that make a certificate have `status` at `now` (each excludes the ones before it)."""
    soon = now + dt.timedelta(days=settings.TRUSTVIEW_EXPIRING_DAYS)
    live = _live(now)
    return {
        Status.BLOCKED: Q(state=LifecycleState.BLOCKED),
        Status.EXPIRED: ~Q(state=LifecycleState.BLOCKED) & Q(not_after__lte=now),
        Status.SUPERSEDED: live & Q(state=LifecycleState.SUPERSEDED),
        Status.NOT_YET_VALID: live & Q(state=LifecycleState.ACTIVE, not_before__gt=now),
        Status.EXPIRING: live & Q(state=LifecycleState.ACTIVE, not_before__lte=now, not_after__lte=soon),
        Status.VALID: live & Q(state=LifecycleState.ACTIVE, not_before__lte=now, not_after__gt=soon),
    }[status]


@dataclass(frozen=True)
class ExpiryWindow:
    """Certificates in `state` whose not_after is in [start, end) (None: unbounded on that side); with
    `started_by`, only those valid by then (not_before <= started_by)."""

    state: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    started_by: dt.datetime | None = None

    def range(self) -> Q:
        condition = Q()
        if self.start is not None:
            condition &= Q(not_after__gte=self.start)
        if self.end is not None:
            condition &= Q(not_after__lt=self.end)
        return condition


_JUST_AFTER = dt.timedelta(microseconds=1)  # (a, b] as [a + 1 µs, b + 1 µs): stored times are to the µs


def _state_windows(now: dt.datetime) -> dict[str, ExpiryWindow]:
    """The dashboard's five states on a certificate's own columns as ExpiryWindows: the same conditions
    as `_status_condition` (valid, expiring, blocked) and `_lapsed`, and "critical" as state_counts has it."""
    soon = now + dt.timedelta(days=settings.TRUSTVIEW_EXPIRING_DAYS)
    critical = min(soon, now + dt.timedelta(days=settings.TRUSTVIEW_CRITICAL_DAYS))
    active = LifecycleState.ACTIVE
    return {
        "valid": ExpiryWindow(active, soon + _JUST_AFTER, None, started_by=now),
        "expiring": ExpiryWindow(active, now + _JUST_AFTER, soon + _JUST_AFTER, started_by=now),
        "critical": ExpiryWindow(active, now + _JUST_AFTER, critical + _JUST_AFTER, started_by=now),
        "lapsed": ExpiryWindow(active, None, now + _JUST_AFTER),
        "blocked": ExpiryWindow(LifecycleState.BLOCKED),
    }


def _tally_days(
    start: dt.datetime | None, end: dt.datetime | None
) -> tuple[tuple[dt.date | None, dt.date | None], list[tuple[dt.datetime, dt.datetime, int]]]:
    """[start, end) as the UTC days it touches, [first, stop) (None: unbounded), and the parts of days
    to count from the certificates, each [a, b) with its sign. A bound inside a day cuts it in two, and
    the shorter part is counted: the part of `start`'s day before it taken off (-1) or the part after it
    added (+1, that day then left out of the sum); the part of `end`'s day before it added (+1) or the part
    after it taken off (-1, that day then summed). So a month that starts at midnight in Copenhagen
    (23:00 or 22:00 UTC) counts an hour or two of certificates, not a day's. The days sum to [midnight of
    first, midnight of stop), so with the parts they make [start, end) exactly; windows that meet share
    a part."""

    def midnight(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)

    def cut(bound: dt.datetime) -> tuple[dt.date, tuple[dt.datetime, dt.datetime] | None, bool]:
        """The day summed up to (or from) `bound`, the part of a day to count, and whether that part
        lies after the bound."""
        day = bound.astimezone(dt.UTC).date()
        if midnight(day) == bound:
            return day, None, False
        following = day + dt.timedelta(days=1)
        if bound - midnight(day) > midnight(following) - bound:
            return following, (bound, midnight(following)), True
        return day, (midnight(day), bound), False

    first = stop = None
    edges = []
    if start is not None:
        first, part, after = cut(start)
        if part is not None:
            edges.append((*part, 1 if after else -1))
    if end is not None:
        stop, part, after = cut(end)
        if part is not None:
            edges.append((*part, -1 if after else 1))
    return (first, stop), edges


class Certificate(models.Model):
    """One X.509 certificate in the inventory, parsed once into the columns that queries need.

    The private key, when the portal holds one, is stored encrypted (certificates.vault). A certificate
    without a key is monitor-only. Renewals form a chain through `renewed_from` (reverse: `replaced_by`).
    """

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="certificates"
    )
    subject_cn = models.CharField("common name", max_length=255, db_index=True)
    subject_dn = models.TextField("subject")
    subject_organization = models.CharField("organisation name", max_length=255, blank=True)
    issuer_cn = models.CharField("issuer common name", max_length=255)
    issuer_dn = models.TextField("issuer")
    serial_number = models.CharField(max_length=64, db_index=True)
    fingerprint_sha256 = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    not_before = models.DateTimeField("valid from")
    not_after = models.DateTimeField("valid to", db_index=True)
    key_algorithm = models.CharField(max_length=32)
    key_size = models.PositiveIntegerField(null=True, blank=True)
    signature_algorithm = models.CharField(max_length=64)
    is_ca = models.BooleanField("CA certificate", default=False)
    subject_key_id = models.CharField(max_length=128, blank=True, db_index=True)
    authority_key_id = models.CharField(max_length=128, blank=True)
    subject_alt_names = models.JSONField("subject alternative names", default=list, blank=True)
    policies = models.JSONField("certificate policies", default=list, blank=True)
    ocsp_urls = models.JSONField("OCSP addresses", default=list, blank=True)
    crl_urls = models.JSONField("CRL addresses", default=list, blank=True)

    cvr = models.CharField("CVR", max_length=8, blank=True, db_index=True)
    oces_uuid = models.UUIDField("certificate UUID", null=True, blank=True, db_index=True)
    environment = models.CharField(max_length=16, choices=CertEnvironment.choices, blank=True, db_index=True)
    oces_type = models.CharField("OCES type", max_length=16, choices=OcesType.choices, blank=True)

    pem = models.TextField("certificate (PEM)")
    chain_pem = models.TextField("chain (PEM)", blank=True)
    private_key_encrypted = models.TextField(blank=True, editable=False)
    # Whether signatures lead from this certificate to a TrustedCA (None: not checked yet), and if not,
    # why not (an English sentence of certificates.trust, translated where it is shown).
    chain_verified = models.BooleanField(null=True, blank=True, default=None, editable=False)
    trust_root = models.ForeignKey(
        TrustedCA,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="certificates",
        editable=False,
    )
    verification_error = models.CharField(max_length=255, blank=True, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the revocation check last asked about this certificate (a CRL or OCSP answer, or a failure to
    # get one); None: never. Each run takes the oldest (certificates.revocation), spreading it over the day.
    revocation_checked_at = models.DateTimeField(
        "revocation last checked", null=True, blank=True, editable=False
    )

    source = models.CharField(max_length=16, choices=Source.choices, default=Source.IMPORT)
    state = models.CharField(
        max_length=16, choices=LifecycleState.choices, default=LifecycleState.ACTIVE, db_index=True
    )
    auto_renew = models.BooleanField(default=True)
    renew_before = models.DurationField(
        default=DEFAULT_RENEW_BEFORE, help_text="Renew this long before expiry (days as D, or D HH:MM:SS)."
    )
    # Derived from the validity and renew_before on every save, and indexed: "what is due" is one
    # range scan, whatever the inventory size.
    renew_at = models.DateTimeField("renewal due", null=True, blank=True, db_index=True, editable=False)
    renewed_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        ordering = ["not_after", "id"]
        indexes = [
            # With the organisation, so the dashboard counts the edges of its windows in the index alone,
            # for every certificate or an organisation limit (count_by_expiry).
            models.Index(fields=["state", "not_after", "organization"], name="cert_state_expiry_idx"),
            # Active certificates by when they are due: "needs attention" finds the unexpired ones due
            # for renewal here (lapsed ones are read in the index only, as not_after rides along).
            models.Index(
                fields=["renew_at", "not_after"], condition=Q(state="active"), name="cert_active_due_idx"
            ),
            # The few certificates not valid yet, which the dashboard's tallied counts subtract.
            models.Index(fields=["not_before"], name="cert_not_before_idx"),
            # "What is due" (due_for_renewal) reads only renewable rows: superseded, blocked, monitor-only
            # and opted-out certificates are not in this index, so the sweep's cost follows what can be
            # renewed, not the inventory. not_after rides along so lapsed rows are skipped in the index.
            models.Index(
                fields=["renew_at", "not_after"],
                condition=Q(state="active", auto_renew=True) & ~Q(private_key_encrypted=""),
                name="cert_renewable_due_idx",
            ),
            # The import looks up issuers among the inventory's CA certificates by subject (trust.py);
            # without this, every imported certificate reads the whole table.
            models.Index(fields=["is_ca"], condition=Q(is_ca=True), name="cert_ca_idx"),
            # The revocation check takes the certificates checked longest ago (or never) among those it
            # may ask about: an index range scan from the oldest, whatever the inventory size.
            models.Index(
                fields=["revocation_checked_at", "id"],
                condition=Q(chain_verified=True) & ~Q(state="blocked"),
                name="cert_revocation_check_idx",
            ),
        ]
        # The actions beyond looking (view_certificate) and importing (add_certificate); the roles
        # (accounts.roles) are built from these.
        permissions = [
            ("renew_certificate", "Can renew certificates and change their renewal settings"),
            ("block_certificate", "Can block certificates at their CA"),
            ("download_private_key", "Can download private keys (PKCS#12)"),
        ]

    def __str__(self) -> str:
        return f"{self.subject_cn} ({self.serial_number})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.renew_at = renewal_due_at(self.not_before, self.not_after, self.renew_before)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "renew_before" in update_fields:
            kwargs["update_fields"] = {*update_fields, "renew_at"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return object_url("certificates:detail", self.pk)

    @property
    def has_private_key(self) -> bool:
        """Whether the portal holds this certificate's private key (otherwise it is monitor-only); read
        from the `holds_key` annotation when the key column was left in the database (for_listing)."""
        if "holds_key" in self.__dict__:
            return bool(self.__dict__["holds_key"])
        return bool(self.private_key_encrypted)

    def days_left(self, now: dt.datetime | None = None) -> int:
        """Whole days until not_after (negative once expired)."""
        return (self.not_after - (now or timezone.now())).days

    def open_renewal(self) -> Order | None:
        """The renewal order in progress for this certificate, if any (at most one: a constraint)."""
        return Order.objects.open().filter(certificate=self, kind=OrderKind.RENEW).first()

    def renewal_blocker(self, now: dt.datetime | None = None) -> str | None:
        """Why the portal cannot renew this certificate now, in a sentence; None when it can. Pages and
        e-mails show this same sentence, and auto-renew is shown as not applying while it stands."""
        now = now or timezone.now()
        if self.is_ca:
            return gettext(
                "This is a CA certificate: the portal watches it, but renews only certificates it holds "
                "a key for. Its CA publishes its successor."
            )
        if self.state == LifecycleState.BLOCKED:
            return gettext("The certificate is blocked, so it cannot be renewed. Order a new certificate.")
        if self.not_after <= now:
            return gettext(
                "The certificate has expired, so it cannot be renewed: order a new certificate (in MitID "
                "Erhverv, make a new certificate profile and issue it from the Issue page)."
            )
        if self.state == LifecycleState.SUPERSEDED:
            return gettext("This certificate has already been renewed; its renewal supersedes it.")
        if not self.has_private_key:
            return gettext(
                "The portal holds no private key for this certificate (monitor only), so it cannot renew "
                "it. Import it with its private key, or renew it where it was issued."
            )
        issuer = issuer_for(self)
        if issuer is None:
            return gettext(
                "No CA connected to the portal issued this certificate; renew it where it was issued."
            )
        return issuer.renewal_refusal(self)

    def situation(self, now: dt.datetime | None = None) -> Situation:
        """Where this certificate stands at `now`: the key and the sentence every page, e-mail and export
        shows, what to do, and the actions that can work (certificates.situation). Read the certificate
        with CertificateQuerySet.with_situation to ask this of many without a query each."""
        now = now or timezone.now()
        known = self.__dict__
        holds_key = self.has_private_key
        replaced = bool(known["has_successor"]) if "has_successor" in known else None
        if {"renewing", "renewal_failing", "renewal_late"} <= known.keys():
            facts = Facts(
                renewing=bool(known["renewing"]),
                renewal_failing=bool(known["renewal_failing"]),
                renewal_late=bool(known["renewal_late"]),
                holds_key=holds_key,
                replaced=replaced,
            )
        else:
            row: dict[str, Any] = (
                Certificate.objects.filter(pk=self.pk)  # type: ignore[misc]
                .with_renewal_state(now)
                .values("renewing", "renewal_failing", "renewal_late")
                .first()
            ) or {}
            facts = Facts(
                renewing=bool(row.get("renewing")),
                renewal_failing=bool(row.get("renewal_failing")),
                renewal_late=bool(row.get("renewal_late")),
                holds_key=holds_key,
                replaced=replaced,
            )
        return Situation(self, now, facts)

    def block_blocker(self, now: dt.datetime | None = None) -> str | None:
        """Why the portal cannot block this certificate at its CA, in a sentence; None when it can. Asked
        before the confirmation page, so nobody confirms an irreversible action that cannot happen."""
        now = now or timezone.now()
        if self.state == LifecycleState.BLOCKED:
            return gettext("The certificate is already blocked.")
        if self.not_after <= now:
            return gettext("The certificate has expired, so there is nothing left to block.")
        if not self.has_private_key or issuer_for(self) is None:
            return gettext(
                "The portal cannot block this certificate at its CA (it holds no private key for it, or no "
                "connected CA issued it). Block it where it was issued, for example in MitID Erhverv."
            )
        return None

    def renewal_not_enabled(self) -> bool:
        """Whether renewal waits for Digst to enable the organisation (as far as the portal knows)."""
        return self.organization is not None and self.organization.renewal_enabled is False

    @property
    def serial_number_display(self) -> str:
        return _colon_pairs(self.serial_number)

    @property
    def fingerprint_display(self) -> str:
        return _colon_pairs(self.fingerprint_sha256)


def _colon_pairs(hex_text: str) -> str:
    return ":".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))


class ExpiryTally(models.Model):
    """How many certificates of a state expire on a UTC day, for every certificate (scope 0) and per
    organisation (scope: its id), so the dashboard sums a few rows per day instead of counting
    certificates (CertificateQuerySet.count_by_expiry).

    Kept by the database, not by the application: triggers on the certificate table (migration 0014)
    append a row of +n / -n for every insert, delete and change of state, not_after or organisation,
    whichever way it is written (save, bulk_create, update, COPY, a cascade). Appending never waits for
    another writer's lock, so concurrent imports and renewals neither queue nor deadlock on a counter.
    The appended rows stay unsettled until `settle` folds them into one settled row per day (the sweep
    does it every minute); a count sums both, so it is right before and after.
    """

    EVERY_CERTIFICATE = 0

    scope = models.IntegerField(help_text="0: every certificate; otherwise the organisation's id.")
    state = models.CharField(max_length=16, choices=LifecycleState.choices)
    day = models.DateField(help_text="The UTC day of not_after.")
    certificates = models.IntegerField()
    settled = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["scope", "state", "day"], name="tally_scope_day_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "state", "day"], condition=Q(settled=True), name="one_settled_tally_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.state} {self.day}: {self.certificates}"

    @classmethod
    def settle(cls) -> None:
        """Fold the unsettled rows into the settled ones (one per scope, state and day). Only rows this
        call deleted are folded, so rows appended meanwhile wait for the next call."""
        table = connection.ops.quote_name(cls._meta.db_table)
        upsert = (
            f"INSERT INTO {table} (scope, state, day, certificates, settled) {{rows}} "
            "ON CONFLICT (scope, state, day) WHERE settled "
            f"DO UPDATE SET certificates = {table}.certificates + excluded.certificates"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # One statement: the rows never pass through Python (millions after a bulk load).
                cursor.execute(
                    f"WITH moved AS (DELETE FROM {table} WHERE NOT settled "  # noqa: S608
                    "RETURNING scope, state, day, certificates) "
                    + upsert.format(
                        rows="SELECT scope, state, day, SUM(certificates), true FROM moved "
                        "GROUP BY scope, state, day ORDER BY scope, state, day"
                    )
                )
                return
            cursor.execute(
                f"DELETE FROM {table} WHERE NOT settled RETURNING scope, state, day, certificates"  # noqa: S608
            )
            folded: dict[tuple[int, str, str], int] = {}
            for scope, state, day, count in cursor.fetchall():
                folded[(scope, state, day)] = folded.get((scope, state, day), 0) + count
            if folded:
                cursor.executemany(
                    upsert.format(rows="VALUES (%s, %s, %s, %s, true)"),
                    [(*key, count) for key, count in sorted(folded.items())],
                )


class Event(models.Model):
    """One entry of a certificate's history. Append-only: rows are written once and never changed."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(
        max_length=150, help_text="Who acted, kept even if the user is later deleted ('scheduler' for jobs)."
    )
    message = models.TextField()
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["certificate", "-created_at"], name="event_cert_time_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Events are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    @property
    def text(self) -> str:
        """The message in the reader's language. `message` is stored as an English template with
        %(name)s fields filled from `detail`; text values that are themselves catalogue sentences (a CA's
        error, say) are translated too."""
        values = {
            key: gettext(value) if isinstance(value, str) and value else value
            for key, value in self.detail.items()
        }
        try:
            return gettext(self.message) % values
        except (KeyError, ValueError, TypeError):
            return self.message


class OrderQuerySet(models.QuerySet["Order"]):
    def open(self) -> OrderQuerySet:
        return self.filter(state__in=OPEN_ORDER_STATES)

    def due(self, now: dt.datetime | None = None) -> OrderQuerySet:
        """Open orders whose next step is due (their lease, if a worker had one, has run out)."""
        return self.open().filter(next_attempt_at__lte=now or timezone.now())


class Order(models.Model):
    """One request to a CA (issue or renew) and where it stands.

    The row is the truth: a lost task message or a killed worker only delays the next step, which the
    sweep finds by `next_attempt_at`. A worker claims a step by moving `next_attempt_at` forward with a
    conditional update (a lease), so two workers never take the same step.
    """

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="orders")
    kind = models.CharField(max_length=16, choices=OrderKind.choices, default=OrderKind.RENEW)
    state = models.CharField(max_length=16, choices=OrderState.choices, default=OrderState.PENDING)
    ca_order_id = models.CharField("CA order id", max_length=200, blank=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error_code = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    alerted = models.BooleanField(
        default=False, help_text="An administrator has been told this order is failing."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=150)
    new_certificate = models.ForeignKey(
        Certificate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="order_state_due_idx"),
            # The failing renewals (`_failing_renewal_certificates`): the recent failures as a range,
            # not every failure ever, and their certificates in the index. Without it, PostgreSQL read
            # all failed orders in parallel workers, whose start cost more than the read under load.
            models.Index(
                fields=["state", "completed_at", "certificate"],
                condition=Q(kind="renew"),
                name="order_renewal_outcome_idx",
            ),
        ]
        constraints = [
            # Two clicks and the scheduler at the same moment make one renewal.
            models.UniqueConstraint(
                fields=["certificate"],
                condition=Q(kind="renew", state__in=["pending", "in_progress"]),
                name="one_open_renewal_per_certificate",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.certificate.subject_cn}: {self.get_state_display()}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_ORDER_STATES


class ExpiryAlert(models.Model):
    """An alert about one certificate, claimed before it is sent: one row per (certificate, kind,
    threshold), so that no alert is sent twice, not even by two runs at once (the run whose insert
    succeeds sends), and a threshold crossed while the scheduler was down is still sent on its next run.

    Kinds: an expiry threshold (`threshold_days`), the certificate expiring without a renewal (lapsed,
    threshold 0) and a renewal that is late (threshold 0).

    `run`: while not empty, the row is claimed by that run of the expiry alerts, which has not yet told
    anyone (its e-mail is being written); emptied when the telling is recorded (certificates.alerts).
    """

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="expiry_alerts")
    kind = models.CharField(max_length=16, choices=AlertKind.choices, default=AlertKind.EXPIRY)
    threshold_days = models.PositiveIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)
    recipients = models.JSONField(default=list)
    run = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["certificate", "kind", "threshold_days"], name="one_alert_per_kind_and_threshold"
            )
        ]
        # Only the few claims not yet told: found by their run without reading every alert ever sent.
        indexes = [models.Index(fields=["run"], condition=~Q(run=""), name="expiry_alert_pending_idx")]

    def __str__(self) -> str:
        return f"{self.certificate.subject_cn}: {self.get_kind_display()} {self.threshold_days} days"


class CertificateContact(models.Model):
    """Someone who looks after one certificate (its owner, a team address): they receive that
    certificate's alerts besides the portal's recipients."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="contacts")
    email = models.EmailField("e-mail address")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(fields=["certificate", "email"], name="one_contact_per_address")
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.certificate.subject_cn})"


class Incident(models.Model):
    """Something that affects many certificates at once (a CA outage, the scheduler stopped), told to a
    person once when it opens and once when it closes. At most one incident of a kind is open (a
    constraint), so two workers that notice the same outage join one incident."""

    kind = models.CharField(max_length=32, choices=IncidentKind.choices)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    certificates = models.ManyToManyField(Certificate, blank=True, related_name="incidents")

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(closed_at=None), name="one_open_incident_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} since {self.opened_at:%Y-%m-%d %H:%M}"


class NotificationSettings(models.Model):
    """Who receives alerts and at which thresholds, edited in the portal. One row; empty fields fall back to
    TRUSTVIEW_ALERT_EMAILS / TRUSTVIEW_ALERT_THRESHOLDS_DAYS from the environment."""

    recipients = models.JSONField(default=list, blank=True)
    thresholds_days = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "Notification settings"

    @classmethod
    def load(cls) -> NotificationSettings:
        """The one row (created empty on first use)."""
        row, _ = cls.objects.get_or_create(pk=1)
        return row


class SchedulerHeartbeat(models.Model):
    """When a scheduled job last finished, one row per job, so /readyz can tell a scheduler that runs from
    one that has stopped (beat down, no worker, broker down) without asking Celery."""

    RENEWAL_SWEEP = "renewal-sweep"

    name = models.CharField(max_length=100, unique=True)
    last_success_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.last_success_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def record(cls, name: str) -> None:
        """Note that the job NAME has just finished successfully."""
        cls.objects.update_or_create(name=name, defaults={"last_success_at": timezone.now()})


class MetricCounter(models.Model):
    """A count that only grows, kept in the database so every process (web workers, Celery workers,
    management commands) adds to the same number and /metrics reports it as a Prometheus counter."""

    IMPORT_ERRORS = "import-errors"

    name = models.CharField(max_length=100, unique=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.value}"

    @classmethod
    def increment(cls, name: str) -> None:
        """Add one to the counter NAME (created at zero on first use), atomically in the database."""
        if not cls.objects.filter(name=name).update(value=models.F("value") + 1):
            cls.objects.get_or_create(name=name)
            cls.objects.filter(name=name).update(value=models.F("value") + 1)

    @classmethod
    def read(cls, name: str) -> int:
        return cls.objects.filter(name=name).values_list("value", flat=True).first() or 0


class AlertChannel(models.Model):
    """A chat room or webhook that receives the alerts the e-mails carry: for one organisation (alerts
    about its certificates) or, without one, for the whole portal (every alert).

    The address and the signing secret are secrets (a Slack or Teams webhook address lets anyone post):
    stored encrypted with the key vault, shown afterwards only as `url_hint`, never logged.
    """

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_channels"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    url_encrypted = models.TextField(editable=False)
    url_hint = models.CharField("address", max_length=120, editable=False)
    secret_encrypted = models.TextField(blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["organization__name", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def failing(self) -> bool:
        """Whether the last delivery attempt failed (until one succeeds again)."""
        return self.last_failure_at is not None and (
            self.last_success_at is None or self.last_failure_at > self.last_success_at
        )


class ChannelMessage(models.Model):
    """One alert for one channel, written before it is sent; a Celery task delivers it, retrying passing
    failures with backoff. `content` is the message independent of the channel (title, text, items
    with links); certificates.channels formats it for Teams, Slack or a webhook when it is sent."""

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="messages")
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=32)
    content = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When the next attempt may start: moved forward while an attempt runs (a lease) and after a passing
    # failure (the backoff), so the sweep can tell a lost message from one that waits for its retry.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="channel_message_due_idx")]

    def __str__(self) -> str:
        return f"{self.kind} to {self.channel}: {self.get_state_display()}"
