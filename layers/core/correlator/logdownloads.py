"""Downloads of the event log over HTTP, shared by the logs API and Personium's ``/__log``.

Both answer a download with a redirect to a presigned S3 URL (the Lambda never streams the log) and
the current log, before anything was logged, with an empty ``text/csv`` body.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.event_handler import Response

from correlator.eventlog import CURRENT_KEY, EventLog, archive_key


def redirect(event_log: EventLog, key: str) -> Response[None]:
    """302 to a presigned GET of ``key``; not cached, since the URL expires."""
    return Response(status_code=302, headers={"Location": event_log.presigned_get(key), "Cache-Control": "no-store"})


def current_log(event_log: EventLog) -> Response[str | None]:
    """The current log: a redirect to it, or an empty ``text/csv`` body while nothing is logged."""
    if not event_log.exists(CURRENT_KEY):
        return Response(status_code=200, content_type="text/csv", body="")
    return redirect(event_log, CURRENT_KEY)  # type: ignore[return-value]


def existing_archive(event_log: EventLog, name: str, missing: Callable[[str], Exception]) -> str:
    """The key of the archive ``name``; raises ``missing(name)`` when it is not an archive's name or is gone."""
    try:
        key = archive_key(name)
    except ValueError:
        raise missing(name[:80]) from None
    if not event_log.exists(key):
        raise missing(name)
    return key
