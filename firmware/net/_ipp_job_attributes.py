"""IPP job attributes: the job template a client asks for (checked against what the
printer supports), and the job's description and status as a client reads them.

Page overrides (``overrides``, PWG 5100.6): each value names pages (``pages``, and
optionally ``document-numbers``/``document-copies``) and gives them other values of the
attributes in `OVERRIDABLE`, each checked as the job's own would be. Every value this
printer takes prints the same page on its engine (one tray, one side, monochrome, one
quality), so an accepted override changes nothing the engine does; it is kept and
echoed with the job. An override outside that (no ``pages``, an empty or reversed
range, another member, a value not supported) makes the whole ``overrides`` attribute
unsupported, as any other job template attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from firmware.net._ipp_codec import (
    Attribute,
    AttributeGroup,
    Collection,
    IntRange,
    Resolution,
    ValueTag,
)
from firmware.net._ipp_printer_attributes import (
    MEDIA,
    OVERRIDABLE,
    OVERRIDE_SELECTORS,
    RESOLUTIONS_DPI,
    PrinterDescription,
    date_time,
)
from firmware.net._job_table import JobView, NetworkJob

T = ValueTag

_KEYWORDS_SUPPORTED: dict[str, frozenset[str]] = {
    "sides": frozenset({"one-sided"}),
    "print-color-mode": frozenset({"auto", "monochrome"}),
    "print-content-optimize": frozenset({"auto"}),
    "print-rendering-intent": frozenset({"auto"}),
    "output-bin": frozenset({"face-down"}),
    "job-sheets": frozenset({"none"}),
    "multiple-document-handling": frozenset({"separate-documents-uncollated-copies",
                                             "separate-documents-collated-copies",
                                             "single-document"}),
    "media": frozenset(m.keyword for m in MEDIA),
}
_ENUMS_SUPPORTED: dict[str, frozenset[int]] = {
    "finishings": frozenset({3}),
    "orientation-requested": frozenset({3, 4, 5, 6}),
    "print-quality": frozenset({3, 4, 5}),
}
_IGNORED_JOB_ATTRIBUTES = frozenset({"job-name", "job-priority", "job-hold-until",
                                     "job-account-id", "job-accounting-user-id"})
"""Job attributes taken and not acted on (a printer without a hold queue or accounts)."""


@dataclass
class TemplateCheck:
    """What became of a request's job template attributes."""

    accepted: dict[str, object] = field(default_factory=dict)
    unsupported: list[Attribute] = field(default_factory=list)
    copies: int = 1


def _media_col_ok(value: object) -> bool:
    if not isinstance(value, Collection):
        return False
    size = value.get("media-size")
    if size is None:
        return True
    col = size.value
    if not isinstance(col, Collection):
        return False
    x, y = col.get("x-dimension"), col.get("y-dimension")
    if x is None or y is None:
        return False
    width, length = x.value, y.value
    if not isinstance(width, int) or not isinstance(length, int):
        return False
    return any(abs(width - m.width_hmm) <= 100 and abs(length - m.length_hmm) <= 100
               for m in MEDIA)


def _ranges_ok(attribute: Attribute) -> bool:
    """A 1setOf rangeOfInteger(1:MAX), each range lower <= upper."""
    return all(v.tag == T.RANGE_OF_INTEGER and isinstance(v.value, IntRange)
               and 1 <= v.value.lower <= v.value.upper for v in attribute.values)


def _override_ok(value: object) -> bool:
    if not isinstance(value, Collection):
        return False
    names = [m.name for m in value.members]
    if "pages" not in names or len(set(names)) != len(names):
        return False
    overridden = [m for m in value.members if m.name not in OVERRIDE_SELECTORS]
    return (bool(overridden)
            and all(_ranges_ok(m) for m in value.members if m.name in OVERRIDE_SELECTORS)
            and all(m.name in OVERRIDABLE and _one_ok(m) for m in overridden))


def _one_ok(attribute: Attribute) -> bool:
    name, value, tag = attribute.name, attribute.value, attribute.tag
    if name == "overrides":
        return all(v.tag == T.BEG_COLLECTION and _override_ok(v.value)
                   for v in attribute.values)
    if len(attribute.values) != 1 and name not in ("finishings",):
        return False
    if name == "copies":
        return tag == T.INTEGER and isinstance(value, int) and 1 <= value <= 99
    if name in _KEYWORDS_SUPPORTED:
        return tag in (T.KEYWORD, T.NAME) and value in _KEYWORDS_SUPPORTED[name]
    if name in _ENUMS_SUPPORTED:
        return all(v.tag == T.ENUM and v.value in _ENUMS_SUPPORTED[name]
                   for v in attribute.values)
    if name == "printer-resolution":
        return (tag == T.RESOLUTION and isinstance(value, Resolution) and value.units == 3
                and value.cross_feed == value.feed and value.feed in RESOLUTIONS_DPI)
    if name == "number-up":
        return tag == T.INTEGER and value == 1
    if name == "media-col":
        return tag == T.BEG_COLLECTION and _media_col_ok(value)
    return name in _IGNORED_JOB_ATTRIBUTES


def check_template(group: AttributeGroup | None) -> TemplateCheck:
    """Sort ``group``'s job attributes into those the printer takes and those it does not
    (returned with the value the client sent, for the unsupported-attributes group)."""
    check = TemplateCheck()
    if group is None:
        return check
    for attribute in group.attributes:
        if _one_ok(attribute):
            values = [v.value for v in attribute.values]
            check.accepted[attribute.name] = values[0] if len(values) == 1 else tuple(values)
            if attribute.name == "copies":
                assert isinstance(attribute.value, int)
                check.copies = attribute.value
        else:
            check.unsupported.append(attribute)
    return check


def _template_attribute(name: str, value: object) -> Attribute | None:
    if name == "copies" or name == "number-up":
        return Attribute.of(name, T.INTEGER, value)
    if name in _KEYWORDS_SUPPORTED:
        return Attribute.of(name, T.KEYWORD, value)
    if name in _ENUMS_SUPPORTED:
        values = value if isinstance(value, tuple) else (value,)
        return Attribute.of(name, T.ENUM, *values)
    if name == "printer-resolution":
        return Attribute.of(name, T.RESOLUTION, value)
    if name == "media-col":
        return Attribute.of(name, T.BEG_COLLECTION, value)
    if name == "overrides":
        return Attribute.of(name, T.BEG_COLLECTION,
                            *(value if isinstance(value, tuple) else (value,)))
    return None


JOB_DESCRIPTION = (
    "compression-supplied", "copies", "date-time-at-completed", "date-time-at-creation",
    "date-time-at-processing", "document-format-detected", "document-format-supplied",
    "job-id", "job-impressions", "job-impressions-completed", "job-k-octets",
    "job-k-octets-processed", "job-media-sheets", "job-media-sheets-completed", "job-name",
    "job-originating-user-name", "job-printer-up-time", "job-printer-uri", "job-state",
    "job-state-message", "job-state-reasons", "job-uri", "job-uuid", "number-of-documents",
    "time-at-completed", "time-at-creation", "time-at-processing",
)


def job_attributes(job: NetworkJob, view: JobView, *, printer_uri: str,
                   description: PrinterDescription,
                   requested: Iterable[str] | None) -> list[Attribute]:
    """``job``'s attributes for ``requested`` (None: all; ``job-template``,
    ``job-description`` and ``all`` are groups)."""
    wanted: set[str] | None = None
    if requested is not None:
        wanted = set()
        for name in requested:
            if name in ("all", "job-description"):
                wanted |= set(JOB_DESCRIPTION)
            if name in ("all", "job-template"):
                wanted |= set(job.template) | {"copies"}
            wanted.add(name)
    return [a for a in _all_job_attributes(job, view, printer_uri, description)
            if wanted is None or a.name in wanted]


def _time_attributes(name: str, at: float | None,
                     description: PrinterDescription) -> Iterator[Attribute]:
    if at is None:
        yield Attribute.of(f"time-at-{name}", T.NO_VALUE)
        yield Attribute.of(f"date-time-at-{name}", T.NO_VALUE)
    else:
        yield Attribute.of(f"time-at-{name}", T.INTEGER, description.up_time_s(at))
        yield Attribute.of(f"date-time-at-{name}", T.DATE_TIME, date_time(at))


def _all_job_attributes(job: NetworkJob, view: JobView, printer_uri: str,
                        description: PrinterDescription) -> Iterator[Attribute]:
    yield Attribute.of("job-id", T.INTEGER, job.id)
    yield Attribute.of("job-uri", T.URI, f"{printer_uri}/{job.id}")
    yield Attribute.of("job-printer-uri", T.URI, printer_uri)
    yield Attribute.of("job-uuid", T.URI, f"urn:uuid:{description.uuid.hex[:8]}-"
                       f"{description.uuid.hex[8:12]}-{description.uuid.hex[12:16]}-"
                       f"{description.uuid.hex[16:20]}-{job.id:012x}")
    yield Attribute.of("job-name", T.NAME, job.name[:255] or f"Job {job.id}")
    yield Attribute.of("job-originating-user-name", T.NAME, job.user[:255] or "anonymous")
    yield Attribute.of("job-state", T.ENUM, int(view.state))
    yield Attribute.of("job-state-reasons", T.KEYWORD, *view.reasons)
    yield Attribute.of("job-state-message", T.TEXT, view.message[:255])
    yield Attribute.of("job-printer-up-time", T.INTEGER, description.up_time_s())
    yield Attribute.of("time-at-creation", T.INTEGER, description.up_time_s(job.created_at))
    yield Attribute.of("date-time-at-creation", T.DATE_TIME, date_time(job.created_at))
    yield from _time_attributes("processing", view.processing_at, description)
    yield from _time_attributes("completed", view.completed_at, description)
    documents = 0 if job.detected_format is None and not job.pages else 1
    yield Attribute.of("number-of-documents", T.INTEGER, documents)
    k_octets = (job.octets + 1023) // 1024
    yield Attribute.of("job-k-octets", T.INTEGER, k_octets)
    yield Attribute.of("job-k-octets-processed", T.INTEGER,
                       k_octets if view.state.terminal else 0)
    yield Attribute.of("job-impressions", T.INTEGER, view.impressions)
    yield Attribute.of("job-impressions-completed", T.INTEGER, view.impressions_completed)
    yield Attribute.of("job-media-sheets", T.INTEGER, view.impressions)
    yield Attribute.of("job-media-sheets-completed", T.INTEGER, view.impressions_completed)
    yield Attribute.of("compression-supplied", T.KEYWORD, job.compression)
    yield Attribute.of("document-format-supplied", T.MIME_MEDIA_TYPE, job.document_format)
    if job.detected_format is not None:
        yield Attribute.of("document-format-detected", T.MIME_MEDIA_TYPE, job.detected_format)
    yield Attribute.of("copies", T.INTEGER, job.copies)
    for name, value in sorted(job.template.items()):
        if name == "copies":
            continue
        attribute = _template_attribute(name, value)
        if attribute is not None:
            yield attribute
