"""A small IPP client for the tests, on this project's own RFC 8010 codec over
``http.client`` (ipptool, CUPS and pyipp are the clients nobody here wrote)."""

from __future__ import annotations

import http.client
import itertools
from collections.abc import Iterable

from firmware.net._ipp_codec import (
    Attribute,
    AttributeGroup,
    GroupTag,
    IppMessage,
    ValueTag,
    decode_message,
    encode_message,
)
from firmware.net._ipp_enums import Operation

T = ValueTag
_request_ids = itertools.count(1)


class IppClient:
    def __init__(self, address: tuple[str, int], user: str = "tester") -> None:
        self.host, self.port = address
        self.uri = f"ipp://{self.host}:{self.port}/ipp/print"
        self.user = user

    def call(self, operation: Operation, *attributes: Attribute,
             groups: Iterable[AttributeGroup] = (), data: bytes = b"",
             version: tuple[int, int] = (2, 0), timeout_s: float = 60.0) -> IppMessage:
        operation_group = AttributeGroup(GroupTag.OPERATION, (
            Attribute.of("attributes-charset", T.CHARSET, "utf-8"),
            Attribute.of("attributes-natural-language", T.NATURAL_LANGUAGE, "en"),
            Attribute.of("printer-uri", T.URI, self.uri),
            Attribute.of("requesting-user-name", T.NAME, self.user),
            *attributes))
        message = IppMessage(version, int(operation), next(_request_ids),
                             (operation_group, *groups))
        body = encode_message(message) + data
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
        try:
            connection.request("POST", "/ipp/print", body,
                               {"Content-Type": "application/ipp"})
            response = connection.getresponse()
            assert response.status == 200, response.status
            answer, _ = decode_message(response.read())
        finally:
            connection.close()
        return answer

    def print_job(self, data: bytes, fmt: str = "text/plain", *attributes: Attribute,
                  job: Iterable[Attribute] = ()) -> IppMessage:
        job_group = tuple(job)
        return self.call(Operation.PRINT_JOB,
                         Attribute.of("document-format", T.MIME_MEDIA_TYPE, fmt), *attributes,
                         groups=(AttributeGroup(GroupTag.JOB, job_group),) if job_group else (),
                         data=data)

    def printer_attributes(self, *names: str) -> AttributeGroup:
        extra = (Attribute.of("requested-attributes", T.KEYWORD, *names),) if names else ()
        answer = self.call(Operation.GET_PRINTER_ATTRIBUTES, *extra)
        group = answer.group(GroupTag.PRINTER)
        assert group is not None, answer
        return group

    def job_attributes(self, job_id: int) -> AttributeGroup:
        answer = self.call(Operation.GET_JOB_ATTRIBUTES,
                           Attribute.of("job-id", T.INTEGER, job_id))
        group = answer.group(GroupTag.JOB)
        assert group is not None, answer
        return group


def value(group: AttributeGroup | None, name: str) -> object:
    assert group is not None
    attribute = group.get(name)
    assert attribute is not None, f"no {name} in {group}"
    return attribute.value


def values(group: AttributeGroup | None, name: str) -> list[object]:
    assert group is not None
    attribute = group.get(name)
    assert attribute is not None, f"no {name} in {group}"
    return list(attribute)
