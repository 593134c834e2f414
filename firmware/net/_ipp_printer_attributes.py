"""The IPP printer's attributes: its description from the board file, its status from
the printer's published snapshot.

Static attributes are built and encoded once (a status query then costs their bytes
joined, not their encoding); the ones that follow the printer (state, reasons, markers,
supplies, trays, counters, URIs) are built per request from the snapshot the request
took. Get-Printer-Attributes' ``requested-attributes`` selects by name or by group
(``all``, ``printer-description``, ``job-template``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from boards import BoardConfig
from firmware.net._documents import COMPRESSIONS, FORMATS, OCTET_STREAM
from firmware.net._ipp_codec import (
    Attribute,
    Collection,
    DateTime,
    IntRange,
    Resolution,
    ValueTag,
    encode_attribute,
)
from firmware.net._ipp_enums import Operation
from firmware.net._printer_status import PrinterStatus

T = ValueTag

RESOLUTIONS_DPI = (300, 600)
RASTER_TYPES = ("black_1", "sgray_8", "srgb_8")
MARGIN_HUNDREDTHS_MM = 423
"""A laser printer's unprintable edge: 1/6 inch."""


@dataclass(frozen=True, slots=True)
class Media:
    keyword: str
    width_hmm: int
    length_hmm: int
    """Hundredths of a millimetre, as IPP counts them."""


A4 = Media("iso_a4_210x297mm", 21000, 29700)
LETTER = Media("na_letter_8.5x11in", 21590, 27940)
MEDIA = (A4, LETTER)

OPERATIONS = (
    Operation.PRINT_JOB, Operation.VALIDATE_JOB, Operation.CREATE_JOB,
    Operation.SEND_DOCUMENT, Operation.CANCEL_JOB, Operation.GET_JOB_ATTRIBUTES,
    Operation.GET_JOBS, Operation.GET_PRINTER_ATTRIBUTES,
    Operation.CREATE_PRINTER_SUBSCRIPTIONS, Operation.CREATE_JOB_SUBSCRIPTIONS,
    Operation.GET_SUBSCRIPTION_ATTRIBUTES, Operation.GET_SUBSCRIPTIONS,
    Operation.RENEW_SUBSCRIPTION, Operation.CANCEL_SUBSCRIPTION, Operation.GET_NOTIFICATIONS,
    Operation.CANCEL_MY_JOBS, Operation.CLOSE_JOB, Operation.IDENTIFY_PRINTER,
)

NOTIFY_EVENTS = ("job-completed", "job-created", "job-progress", "job-state-changed",
                 "printer-state-changed", "printer-stopped")
NOTIFY_LEASE_DEFAULT_S = 3600
NOTIFY_LEASE_MAX_S = 86400
NOTIFY_MAX_EVENTS = 100

JOB_TEMPLATE = frozenset({
    "copies", "finishings", "media", "media-col", "orientation-requested", "output-bin",
    "print-color-mode", "print-content-optimize", "print-quality", "print-rendering-intent",
    "printer-resolution", "sides", "job-sheets", "number-up", "multiple-document-handling",
    "page-ranges", "overrides",
})
"""Job template attributes the printer takes (``job-creation-attributes-supported``)."""

OVERRIDE_SELECTORS = ("document-copies", "document-numbers", "pages")
"""The members of an ``overrides`` value that say which pages it is for (PWG 5100.6)."""
OVERRIDABLE = ("media", "media-col", "orientation-requested", "print-color-mode",
               "print-quality")
"""The job template attributes a page range may take other values of."""


def media_loaded(config: BoardConfig) -> Media:
    """The media in the tray: the size whose length is nearest the board's sheet."""
    length_hmm = config.engine.sheet_length_mm * 100
    return min(MEDIA, key=lambda m: abs(m.length_hmm - length_hmm))


def _media_col(media: Media, *, source: bool) -> Collection:
    members = [
        Attribute.of("media-size", T.BEG_COLLECTION, Collection((
            Attribute.of("x-dimension", T.INTEGER, media.width_hmm),
            Attribute.of("y-dimension", T.INTEGER, media.length_hmm)))),
        Attribute.of("media-bottom-margin", T.INTEGER, MARGIN_HUNDREDTHS_MM),
        Attribute.of("media-left-margin", T.INTEGER, MARGIN_HUNDREDTHS_MM),
        Attribute.of("media-right-margin", T.INTEGER, MARGIN_HUNDREDTHS_MM),
        Attribute.of("media-top-margin", T.INTEGER, MARGIN_HUNDREDTHS_MM),
        Attribute.of("media-type", T.KEYWORD, "stationery"),
    ]
    if source:
        members.append(Attribute.of("media-source", T.KEYWORD, "tray-1"))
    return Collection(tuple(members))


def date_time(t: float) -> DateTime:
    """``t`` (seconds since the epoch) as an RFC 2579 dateTime in UTC."""
    g = time.gmtime(t)
    return DateTime(g.tm_year, g.tm_mon, g.tm_mday, g.tm_hour, g.tm_min, min(g.tm_sec, 60),
                    int(t * 10) % 10, "+", 0, 0)


@dataclass(frozen=True, slots=True)
class PrinterUris:
    """Where a client reaches the printer (from the Host it asked)."""

    ipp: str
    """``ipp://host:port/ipp/print``"""
    http: str
    """``http://host:port``"""


class PrinterDescription:
    """Everything Get-Printer-Attributes answers; see the module docstring."""

    def __init__(self, config: BoardConfig, *, started_at: float, location: str = "") -> None:
        self.config = config
        self.started_at = started_at
        self.name = config.name
        self.media = media_loaded(config)
        self.uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"printer-emu:{config.name}")
        self._static: dict[str, bytes] = {
            a.name: encode_attribute(a) for a in self._static_attributes(location)}
        self.description_names = frozenset(self._static) | frozenset(_DYNAMIC_NAMES)
        self._all_names = sorted(self.description_names)
        self._dynamic_key: tuple[int, PrinterUris, int] | None = None
        self._dynamic_octets: dict[str, bytes] = {}
        self.template_names = frozenset(
            n for n in self.description_names
            if n.rsplit("-", 1)[0] in JOB_TEMPLATE and n.endswith(("-default", "-supported",
                                                                   "-ready"))
        ) | {"media-col-database", "media-col-ready", "media-ready"}

    def up_time_s(self, at: float | None = None) -> int:
        """``printer-up-time`` (and the job ``time-at-*`` attributes): seconds since the
        network task started, from 1."""
        t = time.time() if at is None else at
        return max(1, int(t - self.started_at) + 1)

    def _static_attributes(self, location: str) -> Iterator[Attribute]:
        cfg = self.config
        loaded = self.media
        make_model = f"printer-emu {cfg.name.upper()}"
        yield Attribute.of("charset-configured", T.CHARSET, "utf-8")
        yield Attribute.of("charset-supported", T.CHARSET, "utf-8")
        yield Attribute.of("color-supported", T.BOOLEAN, False)
        yield Attribute.of("compression-supported", T.KEYWORD, *COMPRESSIONS)
        yield Attribute.of("copies-default", T.INTEGER, 1)
        yield Attribute.of("copies-supported", T.RANGE_OF_INTEGER, IntRange(1, 99))
        yield Attribute.of("document-format-default", T.MIME_MEDIA_TYPE, OCTET_STREAM)
        yield Attribute.of("document-format-supported", T.MIME_MEDIA_TYPE, *FORMATS)
        yield Attribute.of("finishings-default", T.ENUM, 3)
        yield Attribute.of("finishings-supported", T.ENUM, 3)
        yield Attribute.of("generated-natural-language-supported", T.NATURAL_LANGUAGE, "en")
        yield Attribute.of("identify-actions-default", T.KEYWORD, "flash")
        yield Attribute.of("identify-actions-supported", T.KEYWORD, "flash")
        yield Attribute.of("ipp-features-supported", T.KEYWORD, "ipp-everywhere")
        yield Attribute.of("ipp-versions-supported", T.KEYWORD, "1.0", "1.1", "2.0")
        yield Attribute.of("job-creation-attributes-supported", T.KEYWORD,
                           *sorted(JOB_TEMPLATE | {"ipp-attribute-fidelity", "job-name"}))
        yield Attribute.of("job-ids-supported", T.BOOLEAN, True)
        yield Attribute.of("job-impressions-supported", T.RANGE_OF_INTEGER,
                           IntRange(1, 99 * 10_000))
        yield Attribute.of("job-k-octets-supported", T.RANGE_OF_INTEGER,
                           IntRange(0, 2**31 - 1))
        yield Attribute.of("job-sheets-default", T.KEYWORD, "none")
        yield Attribute.of("job-sheets-supported", T.KEYWORD, "none")
        for side in ("bottom", "left", "right", "top"):
            yield Attribute.of(f"media-{side}-margin-supported", T.INTEGER,
                               MARGIN_HUNDREDTHS_MM)
        yield Attribute.of("media-col-database", T.BEG_COLLECTION,
                           *(_media_col(m, source=False) for m in MEDIA))
        yield Attribute.of("media-col-default", T.BEG_COLLECTION, _media_col(loaded, source=True))
        yield Attribute.of("media-col-supported", T.KEYWORD, "media-bottom-margin",
                           "media-left-margin", "media-right-margin", "media-size",
                           "media-source", "media-top-margin", "media-type")
        yield Attribute.of("media-default", T.KEYWORD, loaded.keyword)
        yield Attribute.of("media-size-supported", T.BEG_COLLECTION, *(Collection((
            Attribute.of("x-dimension", T.INTEGER, m.width_hmm),
            Attribute.of("y-dimension", T.INTEGER, m.length_hmm))) for m in MEDIA))
        yield Attribute.of("media-source-supported", T.KEYWORD, "tray-1")
        yield Attribute.of("media-supported", T.KEYWORD, *(m.keyword for m in MEDIA))
        yield Attribute.of("media-type-supported", T.KEYWORD, "stationery")
        yield Attribute.of("multiple-document-handling-supported", T.KEYWORD,
                           "separate-documents-uncollated-copies")
        yield Attribute.of("multiple-document-jobs-supported", T.BOOLEAN, False)
        yield Attribute.of("multiple-operation-time-out", T.INTEGER, 60)
        yield Attribute.of("multiple-operation-time-out-action", T.KEYWORD, "abort-job")
        yield Attribute.of("natural-language-configured", T.NATURAL_LANGUAGE, "en")
        yield Attribute.of("notify-events-default", T.KEYWORD, "job-completed")
        yield Attribute.of("notify-events-supported", T.KEYWORD, *NOTIFY_EVENTS)
        yield Attribute.of("notify-lease-duration-default", T.INTEGER, NOTIFY_LEASE_DEFAULT_S)
        yield Attribute.of("notify-lease-duration-supported", T.RANGE_OF_INTEGER,
                           IntRange(0, NOTIFY_LEASE_MAX_S))
        yield Attribute.of("notify-max-events-supported", T.INTEGER, NOTIFY_MAX_EVENTS)
        yield Attribute.of("notify-pull-method-supported", T.KEYWORD, "ippget")
        yield Attribute.of("number-up-default", T.INTEGER, 1)
        yield Attribute.of("number-up-supported", T.INTEGER, 1)
        yield Attribute.of("operations-supported", T.ENUM, *(int(o) for o in OPERATIONS))
        yield Attribute.of("orientation-requested-default", T.ENUM, 3)
        yield Attribute.of("orientation-requested-supported", T.ENUM, 3)
        yield Attribute.of("output-bin-default", T.KEYWORD, "face-down")
        yield Attribute.of("output-bin-supported", T.KEYWORD, "face-down")
        yield Attribute.of("overrides-supported", T.KEYWORD,
                           *sorted(OVERRIDE_SELECTORS + OVERRIDABLE))
        yield Attribute.of("page-ranges-supported", T.BOOLEAN, False)
        yield Attribute.of("pages-per-minute", T.INTEGER, cfg.engine.rated_ppm)
        yield Attribute.of("pdl-override-supported", T.KEYWORD, "attempted")
        yield Attribute.of("preferred-attributes-supported", T.BOOLEAN, False)
        yield Attribute.of("print-color-mode-default", T.KEYWORD, "monochrome")
        yield Attribute.of("print-color-mode-supported", T.KEYWORD, "auto", "monochrome")
        yield Attribute.of("print-content-optimize-default", T.KEYWORD, "auto")
        yield Attribute.of("print-content-optimize-supported", T.KEYWORD, "auto")
        yield Attribute.of("print-quality-default", T.ENUM, 4)
        yield Attribute.of("print-quality-supported", T.ENUM, 4)
        yield Attribute.of("print-rendering-intent-default", T.KEYWORD, "auto")
        yield Attribute.of("print-rendering-intent-supported", T.KEYWORD, "auto")
        yield Attribute.of("printer-config-change-date-time", T.DATE_TIME,
                           date_time(self.started_at))
        yield Attribute.of("printer-config-change-time", T.INTEGER, 1)
        yield Attribute.of("printer-device-id", T.TEXT,
                           f"MFG:printer-emu;MDL:{cfg.name.upper()};CMD:PWGRaster,JPEG,TXT;")
        yield Attribute.of("printer-geo-location", T.UNKNOWN)
        yield Attribute.of("printer-get-attributes-supported", T.KEYWORD, "document-format")
        yield Attribute.of("printer-info", T.TEXT, cfg.board.description[:127])
        yield Attribute.of("printer-is-accepting-jobs", T.BOOLEAN, True)
        yield Attribute.of("printer-location", T.TEXT, location[:127])
        yield Attribute.of("printer-make-and-model", T.TEXT, make_model[:127])
        yield Attribute.of("printer-name", T.NAME, cfg.name[:127])
        yield Attribute.of("printer-organization", T.TEXT, "")
        yield Attribute.of("printer-organizational-unit", T.TEXT, "")
        yield Attribute.of("printer-output-tray", T.OCTET_STRING,
                           b"type=unRemovableBin;maxcapacity=-2;remaining=-2;status=0;"
                           b"name=Output;stackingorder=firstToLast;pagedelivery=faceDown;")
        yield Attribute.of("printer-resolution-default", T.RESOLUTION,
                           Resolution(max(RESOLUTIONS_DPI), max(RESOLUTIONS_DPI)))
        yield Attribute.of("printer-resolution-supported", T.RESOLUTION,
                           *(Resolution(d, d) for d in RESOLUTIONS_DPI))
        yield Attribute.of("printer-supply-description", T.TEXT, "Black Toner")
        yield Attribute.of("printer-uuid", T.URI, self.uuid.urn)
        yield Attribute.of("pwg-raster-document-resolution-supported", T.RESOLUTION,
                           *(Resolution(d, d) for d in RESOLUTIONS_DPI))
        yield Attribute.of("pwg-raster-document-sheet-back", T.KEYWORD, "normal")
        yield Attribute.of("pwg-raster-document-type-supported", T.KEYWORD, *RASTER_TYPES)
        yield Attribute.of("sides-default", T.KEYWORD, "one-sided")
        yield Attribute.of("sides-supported", T.KEYWORD, "one-sided")
        yield Attribute.of("uri-authentication-supported", T.KEYWORD, "requesting-user-name")
        yield Attribute.of("uri-security-supported", T.KEYWORD, "none")
        yield Attribute.of("which-jobs-supported", T.KEYWORD, "completed", "not-completed",
                           "all")
        yield Attribute.of("marker-colors", T.NAME, "#000000")
        yield Attribute.of("marker-high-levels", T.INTEGER, 100)
        yield Attribute.of("marker-low-levels", T.INTEGER, round(cfg.toner.low_pct))
        yield Attribute.of("marker-names", T.NAME, "Black Toner")
        yield Attribute.of("marker-types", T.KEYWORD, "toner")

    def _dynamic(self, status: PrinterStatus, uris: PrinterUris,
                 queued_jobs: int) -> Iterator[Attribute]:
        """The attributes that follow the snapshot (the clock's two excepted)."""
        level = max(0, min(100, round(status.toner_pct)))
        paper = 0 if status.paper_out else -3  # -3: some paper, amount unknown
        capacity = self.config.tray.capacity_sheets
        yield Attribute.of("marker-levels", T.INTEGER, level)
        yield Attribute.of("media-col-ready", T.BEG_COLLECTION,
                           _media_col(self.media, source=True))
        yield Attribute.of("media-ready", T.KEYWORD, self.media.keyword)
        yield Attribute.of("printer-icons", T.URI, f"{uris.http}/icon.png")
        yield Attribute.of("printer-impressions-completed", T.INTEGER, status.pages_delivered)
        yield Attribute.of("printer-media-sheets-completed", T.INTEGER, status.pages_delivered)
        yield Attribute.of("printer-pages-completed", T.INTEGER, status.pages_delivered)
        yield Attribute.of("printer-input-tray", T.OCTET_STRING, (
            f"type=sheetFeedAutoRemovableTray;mediafeed={self.media.length_hmm * 10};"
            f"mediaxfeed={self.media.width_hmm * 10};maxcapacity={capacity};level={paper};"
            f"status={19 if status.paper_out else 0};name=Tray 1;").encode())
        yield Attribute.of("printer-more-info", T.URI, f"{uris.http}/")
        yield Attribute.of("printer-state", T.ENUM, int(status.printer_state))
        yield Attribute.of("printer-state-change-date-time", T.DATE_TIME,
                           date_time(status.state_changed_at or self.started_at))
        yield Attribute.of("printer-state-change-time", T.INTEGER,
                           self.up_time_s(status.state_changed_at or self.started_at))
        yield Attribute.of("printer-state-message", T.TEXT, status.message[:127])
        yield Attribute.of("printer-state-reasons", T.KEYWORD, *status.reasons)
        yield Attribute.of("printer-supply", T.OCTET_STRING, (
            "index=1;class=supplyThatIsConsumed;type=toner;unit=percent;maxcapacity=100;"
            f"level={level};colorantname=black;").encode())
        yield Attribute.of("printer-supply-info-uri", T.URI, f"{uris.http}/supplies")
        yield Attribute.of("printer-uri-supported", T.URI, uris.ipp)
        yield Attribute.of("queued-job-count", T.INTEGER, queued_jobs)

    def _clock(self, name: str) -> bytes:
        if name == "printer-up-time":
            return encode_attribute(Attribute.of(name, T.INTEGER, self.up_time_s()))
        return encode_attribute(Attribute.of(name, T.DATE_TIME, date_time(time.time())))

    def encoded(self, status: PrinterStatus, uris: PrinterUris, queued_jobs: int,
                requested: Iterable[str] | None) -> bytes:
        """The octets of the printer-attributes group's attributes for ``requested``
        (``None``: all), in name order. What follows the snapshot is encoded once per
        snapshot (and client address); a query only joins bytes."""
        key = (status.seq, uris, queued_jobs)
        if key != self._dynamic_key:
            self._dynamic_key = key
            self._dynamic_octets = {a.name: encode_attribute(a)
                                    for a in self._dynamic(status, uris, queued_jobs)}
        dynamic = self._dynamic_octets
        names = self.select(requested)
        parts = []
        for name in self._all_names if names is None else sorted(names):
            octets = self._static.get(name) or dynamic.get(name)
            parts.append(octets if octets is not None else self._clock(name))
        return b"".join(parts)

    def select(self, requested: Iterable[str] | None) -> set[str] | None:
        """The attribute names ``requested`` asks for (None: all of them)."""
        if requested is None:
            return None
        names: set[str] = set()
        for name in requested:
            if name in ("all", "printer-description"):
                return None
            if name == "job-template":
                names |= self.template_names
            elif name in self.description_names:
                names.add(name)
        return names


_DYNAMIC_NAMES = (
    "marker-levels", "media-col-ready", "media-ready", "printer-current-time",
    "printer-icons", "printer-impressions-completed", "printer-media-sheets-completed",
    "printer-pages-completed", "printer-input-tray", "printer-more-info", "printer-state",
    "printer-state-change-date-time", "printer-state-change-time", "printer-state-message",
    "printer-state-reasons", "printer-supply", "printer-supply-info-uri", "printer-up-time",
    "printer-uri-supported", "queued-job-count",
)
