"""Personium's event-log API on Correlator's event log: ``/__log/current`` and ``/__log/archive``.

PROPFIND answers a WebDAV multistatus with the properties Personium's ``LogCollectionResource``
returns: ``creationdate``, ``getlastmodified``, and for files ``getcontentlength`` (the uncompressed
size), ``getcontenttype`` (``text/csv``) and an empty ``resourcetype``; collections have
``<resourcetype><collection/></resourcetype>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Literal
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from correlator.event import parse_time
from correlator.eventlog import ARCHIVE_NAME_RE, CONTENT_TYPE, CURRENT_KEY, CURRENT_NAME, GENERATION_META, EventLog
from correlator.personium import personium_error

Collection = Literal["current", "archive"]
COLLECTIONS: tuple[Collection, ...] = ("current", "archive")
DAV = "DAV:"
MAX_PROPFIND_BYTES = 64 * 1024
XML_CONTENT_TYPE = "application/xml"


@dataclass(frozen=True, slots=True)
class DavEntry:
    """One resource of a multistatus: a collection (``size`` None) or a log file."""

    href: str
    created: datetime
    modified: datetime
    size: int | None = None


def check_depth(depth: str | None) -> Literal["0", "1"]:
    """Personium's Depth rules: 0 or 1; ``infinity`` → 403 PR403-DV-0001; else 400 PR400-DV-0003."""
    if depth == "infinity":
        raise personium_error("PR403-DV-0001")
    if depth == "0":
        return "0"
    if depth == "1":
        return "1"
    raise personium_error("PR400-DV-0003", "null" if depth is None else depth[:40])


def check_propfind_body(body: bytes) -> None:
    """An empty body or ``<propfind><allprop/></propfind>`` (allprop); else 400 PR400-DV-0001 / -0002.

    Documents with a DOCTYPE are refused outright: no entity of any kind is expanded.
    """
    if not body.strip():
        return
    if len(body) > MAX_PROPFIND_BYTES or b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise personium_error("PR400-DV-0001")
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - no DOCTYPE (refused above): nothing to expand
    except ElementTree.ParseError:
        raise personium_error("PR400-DV-0001") from None
    children = list(root)
    if root.tag != f"{{{DAV}}}propfind" or len(children) != 1 or children[0].tag != f"{{{DAV}}}allprop":
        raise personium_error("PR400-DV-0002")


def log_name_is_valid(collection: Collection, name: str) -> bool:
    """``default.log`` in current; ``default.log.{epoch_ms}`` in archive."""
    return name == CURRENT_NAME if collection == "current" else ARCHIVE_NAME_RE.fullmatch(name) is not None


def log_files(event_log: EventLog, collection: Collection, base_url: str) -> list[DavEntry]:
    """The files of a collection: the current log if it exists; the archives, oldest first."""
    listing = event_log.listing()
    if collection == "current":
        current = event_log.appender.head(CURRENT_KEY)
        entries = []
        for item in listing.current:
            generation = current.metadata.get(GENERATION_META, "") if current else ""
            modified = parse_time(item.last_modified)
            created = _from_epoch_ms(generation) if generation.isdigit() else modified
            entries.append(DavEntry(f"{base_url}/__log/current/{item.name}", created, modified, item.size))
        return entries
    return [
        DavEntry(
            f"{base_url}/__log/archive/{item.name}",
            _from_epoch_ms(item.name.rsplit(".", 1)[1]),
            parse_time(item.last_modified),
            item.size,
        )
        for item in listing.archive
    ]


def collection_entry(collection: Collection, files: list[DavEntry], base_url: str, now: datetime) -> DavEntry:
    """The collection itself; its dates are its oldest file's start and newest file's change (now if empty)."""
    created = min((entry.created for entry in files), default=now)
    modified = max((entry.modified for entry in files), default=now)
    return DavEntry(f"{base_url}/__log/{collection}", created, modified)


def _from_epoch_ms(value: str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def creation_date(value: datetime) -> str:
    """As Personium (Apache Wink) writes ``creationdate``: ``2017-02-03T01:27:31.093+0000``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def multistatus(entries: list[DavEntry]) -> str:
    """The 207 body: one ``<response>`` per entry, every property in one ``200 OK`` propstat."""
    parts = ['<?xml version="1.0" encoding="utf-8" standalone="yes"?>', '<multistatus xmlns="DAV:">']
    for entry in entries:
        props = [
            f"<creationdate>{creation_date(entry.created)}</creationdate>",
            f"<getlastmodified>{format_datetime(entry.modified.astimezone(UTC), usegmt=True)}</getlastmodified>",
        ]
        if entry.size is None:
            props.append("<resourcetype><collection/></resourcetype>")
        else:
            props += [
                f"<getcontentlength>{entry.size}</getcontentlength>",
                f"<getcontenttype>{CONTENT_TYPE}</getcontenttype>",
                "<resourcetype/>",
            ]
        parts.append(
            f"<response><href>{escape(entry.href)}</href><propstat><prop>{''.join(props)}</prop>"
            "<status>HTTP/1.1 200 OK</status></propstat></response>"
        )
    parts.append("</multistatus>")
    return "".join(parts)
