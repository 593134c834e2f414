"""The IPP printer's operations (RFC 8011, RFC 3995/3996, PWG 5100.13): a decoded request
in, the encoded response out. Runs on the network loop's thread; reads the printer only
through its published status snapshot and reaches it only through the job table and the
``identify`` callback (both post to the scheduler's thread).

Every request is checked as RFC 8011 section 4.1 says: a supported version (1.x, 2.x),
a request-id above 0, the operation group first with ``attributes-charset`` then
``attributes-natural-language``, a target (``printer-uri`` or ``job-uri``), no attribute
twice in a group. A malformed request gets ``client-error-bad-request``; the response
always carries the charset and language.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from firmware.net._documents import COMPRESSIONS, FORMATS, DocumentError, DocumentReader
from firmware.net._ipp_codec import (
    Attribute,
    AttributeGroup,
    GroupTag,
    IppMessage,
    ValueTag,
    encode_attribute,
)
from firmware.net._ipp_enums import Operation, Status
from firmware.net._ipp_job_attributes import check_template, job_attributes
from firmware.net._ipp_printer_attributes import (
    NOTIFY_EVENTS,
    NOTIFY_LEASE_DEFAULT_S,
    NOTIFY_LEASE_MAX_S,
    PrinterDescription,
    PrinterUris,
)
from firmware.net._ipp_subscriptions import NOTIFY_GET_INTERVAL_S, Subscription, Subscriptions
from firmware.net._job_table import Intake, JobTable, NetworkJob, job_view
from firmware.net._printer_status import PrinterStatus, StatusBoard

T = ValueTag
_log = logging.getLogger(__name__)
MAX_ACTIVE_JOBS = 200
"""Jobs not yet finished past which the printer answers server-error-busy."""
NOTIFY_WAIT_MAX_S = 30.0
CREATE_JOB_TIMEOUT_S = 60.0
"""``multiple-operation-time-out``: a Create-Job job with no document by then is aborted."""

Body = AsyncIterator[bytes]


class _Refusal(Exception):
    """Ends an operation with a status (and unsupported attributes); not a fault."""

    def __init__(self, status: Status, message: str,
                 unsupported: Iterable[Attribute] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.unsupported = list(unsupported)


@dataclass
class _Response:
    status: Status = Status.OK
    message: str = ""
    operation: list[Attribute] = field(default_factory=list)
    groups: list[tuple[int, list[Attribute] | bytes]] = field(default_factory=list)
    unsupported: list[Attribute] = field(default_factory=list)


@dataclass
class _Request:
    message: IppMessage
    operation: AttributeGroup
    uris: PrinterUris
    data: bytes
    """Document bytes that came with the attributes; the rest is in ``body``."""
    body: Body

    def get(self, name: str) -> object:
        attribute = self.operation.get(name)
        return None if attribute is None else attribute.value

    def strings(self, name: str) -> list[str] | None:
        attribute = self.operation.get(name)
        if attribute is None:
            return None
        return [str(v) for v in attribute]

    @property
    def user(self) -> str:
        user = self.get("requesting-user-name")
        return str(user) if user else "anonymous"


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


class IppService:
    """The printer's IPP operations; see the module docstring."""

    def __init__(self, board: StatusBoard, jobs: JobTable, description: PrinterDescription,
                 identify: Callable[[], None]) -> None:
        self._board = board
        self._jobs = jobs
        self.description = description
        self.subscriptions = Subscriptions(description.name, description.up_time_s)
        self._identify = identify
        self._handlers: dict[int, Callable[[_Request, _Response], Awaitable[None]]] = {
            Operation.PRINT_JOB: self._print_job,
            Operation.VALIDATE_JOB: self._validate_job,
            Operation.CREATE_JOB: self._create_job,
            Operation.SEND_DOCUMENT: self._send_document,
            Operation.CLOSE_JOB: self._close_job,
            Operation.CANCEL_JOB: self._cancel_job,
            Operation.CANCEL_MY_JOBS: self._cancel_my_jobs,
            Operation.GET_JOB_ATTRIBUTES: self._get_job_attributes,
            Operation.GET_JOBS: self._get_jobs,
            Operation.GET_PRINTER_ATTRIBUTES: self._get_printer_attributes,
            Operation.IDENTIFY_PRINTER: self._identify_printer,
            Operation.CREATE_PRINTER_SUBSCRIPTIONS: self._create_subscriptions,
            Operation.CREATE_JOB_SUBSCRIPTIONS: self._create_subscriptions,
            Operation.GET_SUBSCRIPTION_ATTRIBUTES: self._get_subscription_attributes,
            Operation.GET_SUBSCRIPTIONS: self._get_subscriptions,
            Operation.RENEW_SUBSCRIPTION: self._renew_subscription,
            Operation.CANCEL_SUBSCRIPTION: self._cancel_subscription,
            Operation.GET_NOTIFICATIONS: self._get_notifications,
        }

    @property
    def status(self) -> PrinterStatus:
        """The printer's latest published snapshot."""
        return self._board.snapshot

    # -- the request's frame ----------------------------------------------------------

    def bad_request(self, head: bytes, reason: str) -> bytes:
        """client-error-bad-request for a request whose attributes do not parse, named by
        its 8-byte ``head`` (version, operation, request-id)."""
        request_id = int.from_bytes(head[4:8], "big", signed=True)
        return self._encode(IppMessage((head[0], head[1]), 0, request_id),
                            _Response(Status.BAD_REQUEST, reason))

    async def handle(self, message: IppMessage, uris: PrinterUris, data: bytes = b"",
                     body: Body | None = None) -> bytes:
        """Answer ``message`` (document data: ``data`` then the rest of ``body``)."""
        response = _Response()
        try:
            request = self._check(message, uris, data, body or _no_body())
            handler = self._handlers.get(message.code)
            if handler is None:
                raise _Refusal(Status.OPERATION_NOT_SUPPORTED,
                               f"operation {message.code:#06x} is not supported")
            await handler(request, response)
        except _Refusal as refusal:
            response = _Response(refusal.status, str(refusal), unsupported=refusal.unsupported)
        except Exception:
            # A bug, not the client's fault: logged whole, answered, and the printer's
            # network task goes on serving.
            _log.exception("IPP operation %#06x failed", message.code)
            response = _Response(Status.INTERNAL_ERROR, "internal error")
        return self._encode(message, response)

    def _check(self, message: IppMessage, uris: PrinterUris, data: bytes,
               body: Body) -> _Request:
        if message.version[0] not in (1, 2):
            raise _Refusal(Status.VERSION_NOT_SUPPORTED,
                           f"IPP {message.version[0]}.{message.version[1]} is not supported")
        if message.request_id <= 0:
            raise _Refusal(Status.BAD_REQUEST, "request-id must be above 0")
        if not message.groups or message.groups[0].tag != GroupTag.OPERATION:
            raise _Refusal(Status.BAD_REQUEST, "the operation attributes must come first")
        if len(message.groups_of(GroupTag.OPERATION)) > 1:
            raise _Refusal(Status.BAD_REQUEST, "more than one operation attributes group")
        for group in message.groups:
            names = [a.name for a in group.attributes]
            if len(names) != len(set(names)):
                raise _Refusal(Status.BAD_REQUEST, "an attribute appears twice in a group")
        operation = message.groups[0]
        attrs = operation.attributes
        if (len(attrs) < 2 or attrs[0].name != "attributes-charset"
                or attrs[1].name != "attributes-natural-language"):
            raise _Refusal(Status.BAD_REQUEST, "attributes-charset and "
                           "attributes-natural-language must be the first two attributes")
        if attrs[0].tag != T.CHARSET or attrs[1].tag != T.NATURAL_LANGUAGE:
            raise _Refusal(Status.BAD_REQUEST, "charset or natural language has the wrong tag")
        if str(attrs[0].value).lower() not in ("utf-8", "us-ascii"):
            raise _Refusal(Status.CHARSET_NOT_SUPPORTED,
                           f"charset {attrs[0].value} is not supported",
                           [attrs[0]])
        if "printer-uri" not in operation and "job-uri" not in operation:
            raise _Refusal(Status.BAD_REQUEST, "no printer-uri or job-uri")
        return _Request(message, operation, uris, data, body)

    def _encode(self, message: IppMessage, response: _Response) -> bytes:
        major, minor = message.version
        version = (major, minor) if major in (1, 2) else (1, 1)
        out = bytearray((version[0], version[1]))
        out += int(response.status).to_bytes(2, "big")
        out += max(0, message.request_id).to_bytes(4, "big", signed=True)
        out.append(GroupTag.OPERATION)
        operation = [Attribute.of("attributes-charset", T.CHARSET, "utf-8"),
                     Attribute.of("attributes-natural-language", T.NATURAL_LANGUAGE, "en")]
        if response.message:
            operation.append(Attribute.of("status-message", T.TEXT, response.message[:255]))
        for attribute in (*operation, *response.operation):
            out += encode_attribute(attribute)
        if response.unsupported:
            out.append(GroupTag.UNSUPPORTED)
            for attribute in response.unsupported:
                out += encode_attribute(attribute)
        for tag, attributes in response.groups:
            out.append(tag)
            if isinstance(attributes, bytes):
                out += attributes
            else:
                for attribute in attributes:
                    out += encode_attribute(attribute)
        out.append(GroupTag.END_OF_ATTRIBUTES)
        return bytes(out)

    # -- jobs ---------------------------------------------------------------------------

    def _find_job(self, request: _Request) -> NetworkJob:
        job_id: object = request.get("job-id")
        if job_id is None:
            job_uri = request.get("job-uri")
            tail = str(job_uri).rstrip("/").rsplit("/", 1)[-1] if job_uri else ""
            if not tail.isdigit():
                raise _Refusal(Status.BAD_REQUEST, "no job-id or job-uri")
            job_id = int(tail)
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            raise _Refusal(Status.BAD_REQUEST, "job-id is not an integer")
        job = self._jobs.get(job_id)
        if job is None:
            raise _Refusal(Status.NOT_FOUND, f"no job {job_id}")
        return job

    def _document_settings(self, request: _Request) -> tuple[str, str]:
        fmt = str(request.get("document-format") or "application/octet-stream")
        compression = str(request.get("compression") or "none")
        if fmt not in FORMATS:
            raise _Refusal(Status.DOCUMENT_FORMAT_NOT_SUPPORTED,
                           f"document-format {fmt} is not supported",
                           [Attribute.of("document-format", T.MIME_MEDIA_TYPE, fmt)])
        if compression not in COMPRESSIONS:
            raise _Refusal(Status.COMPRESSION_NOT_SUPPORTED,
                           f"compression {compression} is not supported",
                           [Attribute.of("compression", T.KEYWORD, compression)])
        return fmt, compression

    def _template(self, request: _Request, response: _Response) -> tuple[dict[str, object], int]:
        check = check_template(request.message.group(GroupTag.JOB))
        if check.unsupported:
            if request.get("ipp-attribute-fidelity") is True:
                raise _Refusal(Status.ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                               "unsupported job attributes", check.unsupported)
            response.status = Status.OK_IGNORED_OR_SUBSTITUTED
            response.unsupported += check.unsupported
        return check.accepted, check.copies

    def _check_busy(self) -> None:
        if self._jobs.active(self._board.snapshot) >= MAX_ACTIVE_JOBS:
            raise _Refusal(Status.BUSY, "the printer has as many jobs as it takes")

    def _new_job(self, request: _Request, response: _Response,
                 intake: Intake = Intake.RECEIVING) -> NetworkJob:
        self._check_busy()
        template, copies = self._template(request, response)
        name = request.get("job-name") or request.get("document-name") or ""
        job = self._jobs.create(name=str(name), user=request.user, origin="ipp",
                                template=template, copies=copies, intake=intake)
        self.subscriptions.emit("job-created", self._board.snapshot, job,
                                job_view(job, self._board.snapshot))
        return job

    async def _receive(self, job: NetworkJob, request: _Request, fmt: str,
                       compression: str, *, last: bool = True) -> None:
        """Read and measure the document; hand it to the printer if it is the last."""
        self._jobs.receiving(job)
        job.document_format, job.compression = fmt, compression
        reader = DocumentReader(fmt, compression)
        try:
            if request.data:
                reader.feed(request.data)
            async for chunk in request.body:
                reader.feed(chunk)
            pages = reader.close()
        except DocumentError as e:
            job.octets = reader.bytes_received
            job.detected_format = reader.detected_format
            self._jobs.abort(job, str(e))
            raise _Refusal(Status.COMPRESSION_ERROR if e.compression
                           else Status.DOCUMENT_UNPRINTABLE if e.too_large
                           else Status.DOCUMENT_FORMAT_ERROR, str(e)) from None
        job.octets = reader.bytes_received
        job.detected_format = reader.detected_format
        if last:
            self._jobs.submit(job, pages)
        else:
            self._jobs.hold_open(job, pages)

    @staticmethod
    async def _has_data(request: _Request) -> bool:
        """Whether a document follows the attributes (the first chunk is kept)."""
        if request.data:
            return True
        async for chunk in request.body:
            if chunk:
                request.data = chunk
                return True
        return False

    def _job_response(self, job: NetworkJob, request: _Request, response: _Response) -> None:
        view = job_view(job, self._board.snapshot)
        uri = request.uris.ipp
        response.groups.append((GroupTag.JOB, [
            Attribute.of("job-id", T.INTEGER, job.id),
            Attribute.of("job-uri", T.URI, f"{uri}/{job.id}"),
            Attribute.of("job-state", T.ENUM, int(view.state)),
            Attribute.of("job-state-reasons", T.KEYWORD, *view.reasons),
            Attribute.of("job-state-message", T.TEXT, view.message[:255]),
        ]))

    async def _print_job(self, request: _Request, response: _Response) -> None:
        fmt, compression = self._document_settings(request)
        job = self._new_job(request, response)
        await self._receive(job, request, fmt, compression)
        self._job_response(job, request, response)

    async def _validate_job(self, request: _Request, response: _Response) -> None:
        self._document_settings(request)
        self._template(request, response)

    async def _create_job(self, request: _Request, response: _Response) -> None:
        job = self._new_job(request, response, Intake.AWAITING_DOCUMENT)
        asyncio.get_running_loop().call_later(CREATE_JOB_TIMEOUT_S, self._time_out, job)
        self._job_response(job, request, response)

    def _time_out(self, job: NetworkJob) -> None:
        if job.intake in (Intake.AWAITING_DOCUMENT, Intake.OPEN):
            self._jobs.abort(job, "no document came within multiple-operation-time-out")

    async def _send_document(self, request: _Request, response: _Response) -> None:
        job = self._find_job(request)
        last = request.get("last-document")
        if not isinstance(last, bool):
            raise _Refusal(Status.BAD_REQUEST, "Send-Document needs last-document")
        if job.intake is Intake.OPEN:
            if await self._has_data(request):
                raise _Refusal(Status.MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED,
                               "a job holds one document")
            if last:
                self._jobs.submit(job, job.page_coverage_pct)
            self._job_response(job, request, response)
            return
        if job.intake is not Intake.AWAITING_DOCUMENT:
            raise _Refusal(Status.NOT_POSSIBLE, f"job {job.id} takes no more documents")
        fmt, compression = self._document_settings(request)
        if not await self._has_data(request):
            if last:
                self._jobs.abort(job, "the job ended without a document")
            self._job_response(job, request, response)
            return
        await self._receive(job, request, fmt, compression, last=last)
        self._job_response(job, request, response)

    async def _close_job(self, request: _Request, response: _Response) -> None:
        job = self._find_job(request)
        if job.intake is Intake.OPEN:
            self._jobs.submit(job, job.page_coverage_pct)
        elif job.intake is Intake.AWAITING_DOCUMENT:
            self._jobs.abort(job, "closed without a document")
        self._job_response(job, request, response)

    async def _cancel_job(self, request: _Request, response: _Response) -> None:
        job = self._find_job(request)
        if job_view(job, self._board.snapshot).state.terminal:
            raise _Refusal(Status.NOT_POSSIBLE, f"job {job.id} is already finished")
        self._jobs.cancel(job)

    async def _cancel_my_jobs(self, request: _Request, response: _Response) -> None:
        ids = request.operation.get("job-ids")
        wanted = None if ids is None else {int(str(v)) for v in ids}
        status = self._board.snapshot
        for job in self._jobs:
            if job.user != request.user or (wanted is not None and job.id not in wanted):
                continue
            if not job_view(job, status).state.terminal:
                self._jobs.cancel(job)

    async def _get_job_attributes(self, request: _Request, response: _Response) -> None:
        job = self._find_job(request)
        view = job_view(job, self._board.snapshot)
        response.groups.append((GroupTag.JOB, job_attributes(
            job, view, printer_uri=request.uris.ipp, description=self.description,
            requested=request.strings("requested-attributes") or ["all"])))

    async def _get_jobs(self, request: _Request, response: _Response) -> None:
        which = str(request.get("which-jobs") or "not-completed")
        if which not in ("completed", "not-completed", "all"):
            raise _Refusal(Status.ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                           f"which-jobs {which} is not supported",
                           [Attribute.of("which-jobs", T.KEYWORD, which)])
        limit = request.get("limit")
        my_jobs = request.get("my-jobs") is True
        requested = request.strings("requested-attributes") or ["job-id", "job-uri"]
        status = self._board.snapshot
        views = [(job, job_view(job, status)) for job in self._jobs]
        if which == "completed":
            views = [(j, v) for j, v in views if v.state.terminal]
            views.reverse()  # most recently made first
        elif which == "not-completed":
            views = [(j, v) for j, v in views if not v.state.terminal]
        if my_jobs:
            views = [(j, v) for j, v in views if j.user == request.user]
        if isinstance(limit, int) and limit > 0:
            views = views[:limit]
        for job, view in views:
            response.groups.append((GroupTag.JOB, job_attributes(
                job, view, printer_uri=request.uris.ipp, description=self.description,
                requested=requested)))

    # -- the printer ----------------------------------------------------------------------

    async def _get_printer_attributes(self, request: _Request, response: _Response) -> None:
        status = self._board.snapshot
        response.groups.append((GroupTag.PRINTER, self.description.encoded(
            status, request.uris, self._jobs.active(status),
            request.strings("requested-attributes"))))

    async def _identify_printer(self, request: _Request, response: _Response) -> None:
        actions = request.strings("identify-actions") or ["flash"]
        ignored = [a for a in actions if a != "flash"]
        if ignored:
            response.status = Status.OK_IGNORED_OR_SUBSTITUTED
            response.unsupported.append(Attribute.of("identify-actions", T.KEYWORD, *ignored))
        if "flash" in actions or not ignored:
            self._identify()

    # -- subscriptions -------------------------------------------------------------------

    async def _create_subscriptions(self, request: _Request, response: _Response) -> None:
        job_id: int | None = None
        if request.message.code == Operation.CREATE_JOB_SUBSCRIPTIONS:
            raw = request.get("notify-job-id")
            if not isinstance(raw, int) or isinstance(raw, bool):
                raise _Refusal(Status.BAD_REQUEST, "no notify-job-id")
            job = self._jobs.get(raw)
            if job is None:
                raise _Refusal(Status.NOT_FOUND, f"no job {raw}")
            if job_view(job, self._board.snapshot).state.terminal:
                raise _Refusal(Status.NOT_POSSIBLE, f"job {raw} is already finished")
            job_id = raw
        groups = request.message.groups_of(GroupTag.SUBSCRIPTION)
        if not groups:
            raise _Refusal(Status.BAD_REQUEST, "no subscription attributes group")
        made = 0
        for group in groups:
            answer = self._subscribe(group, job_id, request)
            made += any(a.name == "notify-subscription-id" for a in answer)
            response.groups.append((GroupTag.SUBSCRIPTION, answer))
        if not made:
            response.status = Status.IGNORED_ALL_SUBSCRIPTIONS
            response.message = "no subscription could be made"

    def _subscribe(self, group: AttributeGroup, job_id: int | None,
                   request: _Request) -> list[Attribute]:
        if "notify-recipient-uri" in group:
            return [Attribute.of("notify-status-code", T.ENUM,
                                 int(Status.URI_SCHEME_NOT_SUPPORTED))]
        method = group.get("notify-pull-method")
        if method is None or method.value != "ippget":
            return [Attribute.of("notify-status-code", T.ENUM, int(Status.BAD_REQUEST))]
        events_attr = group.get("notify-events")
        events = [str(v) for v in events_attr] if events_attr else ["job-completed"]
        known = [e for e in events if e in NOTIFY_EVENTS]
        if not known:
            return [Attribute.of("notify-status-code", T.ENUM,
                                 int(Status.ATTRIBUTES_OR_VALUES_NOT_SUPPORTED))]
        lease = NOTIFY_LEASE_DEFAULT_S
        lease_attr = group.get("notify-lease-duration")
        if job_id is None and lease_attr is not None and isinstance(lease_attr.value, int):
            lease = max(0, min(NOTIFY_LEASE_MAX_S, lease_attr.value))
            if lease == 0:
                lease = NOTIFY_LEASE_MAX_S  # no lease for ever: the longest the printer gives
        user_data = group.get("notify-user-data")
        data = user_data.value if user_data is not None else None
        sub = self.subscriptions.create(
            events=known, job_id=job_id, user=request.user, printer_uri=request.uris.ipp,
            lease_s=lease, user_data=data[:63] if isinstance(data, bytes) else None)
        if sub is None:
            return [Attribute.of("notify-status-code", T.ENUM,
                                 int(Status.TOO_MANY_SUBSCRIPTIONS))]
        answer = [Attribute.of("notify-subscription-id", T.INTEGER, sub.id)]
        if job_id is None:
            answer.append(Attribute.of("notify-lease-duration", T.INTEGER, sub.lease_s))
        if len(known) != len(events):
            answer.append(Attribute.of("notify-events", T.KEYWORD,
                                       *[e for e in events if e not in NOTIFY_EVENTS]))
        return answer

    def _find_subscription(self, request: _Request) -> Subscription:
        sub_id = request.get("notify-subscription-id")
        if not isinstance(sub_id, int) or isinstance(sub_id, bool):
            raise _Refusal(Status.BAD_REQUEST, "no notify-subscription-id")
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            raise _Refusal(Status.NOT_FOUND, f"no subscription {sub_id}")
        return sub

    def _subscription_attributes(self, sub: Subscription) -> list[Attribute]:
        attributes = [
            Attribute.of("notify-subscription-id", T.INTEGER, sub.id),
            Attribute.of("notify-events", T.KEYWORD, *sorted(sub.events)),
            Attribute.of("notify-pull-method", T.KEYWORD, "ippget"),
            Attribute.of("notify-subscriber-user-name", T.NAME, sub.user),
            Attribute.of("notify-printer-uri", T.URI, sub.printer_uri),
        ]
        if sub.job_id is not None:
            attributes.append(Attribute.of("notify-job-id", T.INTEGER, sub.job_id))
        else:
            left = 0 if sub.expires_at is None else max(0, int(sub.expires_at - time.time()))
            attributes.append(Attribute.of("notify-lease-duration", T.INTEGER, left))
        return attributes

    async def _get_subscription_attributes(self, request: _Request,
                                           response: _Response) -> None:
        sub = self._find_subscription(request)
        response.groups.append((GroupTag.SUBSCRIPTION, self._subscription_attributes(sub)))

    async def _get_subscriptions(self, request: _Request, response: _Response) -> None:
        job_id = request.get("notify-job-id")
        for sub in self.subscriptions:
            if job_id is None or sub.job_id == job_id:
                response.groups.append((GroupTag.SUBSCRIPTION,
                                        self._subscription_attributes(sub)))

    async def _renew_subscription(self, request: _Request, response: _Response) -> None:
        sub = self._find_subscription(request)
        if sub.job_id is not None:
            raise _Refusal(Status.NOT_POSSIBLE, "a job's subscription lasts as long as the job")
        group = request.message.group(GroupTag.SUBSCRIPTION)
        lease_attr = group.get("notify-lease-duration") if group is not None else None
        lease = NOTIFY_LEASE_DEFAULT_S
        if lease_attr is not None and isinstance(lease_attr.value, int):
            lease = max(1, min(NOTIFY_LEASE_MAX_S, lease_attr.value))
        self.subscriptions.renew(sub, lease)
        response.operation.append(Attribute.of("notify-lease-duration", T.INTEGER, lease))

    async def _cancel_subscription(self, request: _Request, response: _Response) -> None:
        sub = self._find_subscription(request)
        self.subscriptions.cancel(sub.id)

    async def _get_notifications(self, request: _Request, response: _Response) -> None:
        ids_attr = request.operation.get("notify-subscription-ids")
        if ids_attr is None:
            raise _Refusal(Status.BAD_REQUEST, "no notify-subscription-ids")
        ids = [v for v in ids_attr if isinstance(v, int)]
        seqs_attr = request.operation.get("notify-sequence-numbers")
        seqs = [v for v in seqs_attr if isinstance(v, int)] if seqs_attr else []
        subs = []
        for sub_id in ids:
            sub = self.subscriptions.get(sub_id)
            if sub is None:
                raise _Refusal(Status.NOT_FOUND, f"no subscription {sub_id}")
            subs.append(sub)
        since = {sub.id: seqs[i] if i < len(seqs) else 1 for i, sub in enumerate(subs)}
        events = self.subscriptions.pending(subs, since)
        if not events and request.get("notify-wait") is True:
            await self.subscriptions.wait(NOTIFY_WAIT_MAX_S)
            events = self.subscriptions.pending(subs, since)
        response.operation.append(Attribute.of("notify-get-interval", T.INTEGER,
                                               NOTIFY_GET_INTERVAL_S))
        response.operation.append(Attribute.of("printer-up-time", T.INTEGER,
                                               self.description.up_time_s()))
        for attributes in events:
            response.groups.append((GroupTag.EVENT_NOTIFICATION, list(attributes)))

