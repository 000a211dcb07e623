"""Read a ``multipart/form-data`` upload as it arrives, without spooling it anywhere first.

FastAPI's ``UploadFile`` would write the whole body to the system temp dir before a handler could
check its size; :class:`MultipartFile` feeds the request stream to python-multipart's parser and
yields the file part's bytes as they come, so the library can stop at the size limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from vidagent.web.library import UploadError

FIELD = "file"


class MultipartFile:
    """The first file part of a multipart body (field ``file``); ``filename`` is set once its
    headers have been read."""

    def __init__(self, content_type: str, stream: AsyncIterator[bytes]) -> None:
        kind, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise UploadError(415, f"send the video as multipart/form-data with a '{FIELD}' field")
        self.filename: str | None = None
        self._stream = stream
        self._pending: list[bytes] = []
        self._header: list[bytes] = [b"", b""]
        self._headers: dict[bytes, bytes] = {}
        self._state = "before"  # before -> reading (our part) -> after
        self._parser = MultipartParser(boundary, self._callbacks())  # type: ignore[arg-type]
        self.found = False

    def _callbacks(self) -> dict[str, Any]:
        def header_field(data: bytes, start: int, end: int) -> None:
            self._header[0] += data[start:end]

        def header_value(data: bytes, start: int, end: int) -> None:
            self._header[1] += data[start:end]

        def header_end() -> None:
            self._headers[self._header[0].lower()] = self._header[1]
            self._header = [b"", b""]

        def headers_finished() -> None:
            _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
            name = params.get(b"name", b"").decode("utf-8", "replace")
            filename = params.get(b"filename")
            if self._state == "before" and name == FIELD and filename is not None:
                self.filename = filename.decode("utf-8", "replace")
                self._state = "reading"
                self.found = True
            self._headers = {}

        def part_data(data: bytes, start: int, end: int) -> None:
            if self._state == "reading":
                self._pending.append(data[start:end])

        def part_end() -> None:
            if self._state == "reading":
                self._state = "after"

        return {
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
            "on_headers_finished": headers_finished,
            "on_part_data": part_data,
            "on_part_end": part_end,
        }

    async def chunks(self) -> AsyncIterator[bytes]:
        async for body in self._stream:
            try:
                self._parser.write(body)
            except Exception as err:  # python-multipart raises its own errors on a bad body
                raise UploadError(400, f"malformed multipart body: {err}") from None
            while self._pending:
                yield self._pending.pop(0)
        self._parser.finalize()
        if not self.found:
            raise UploadError(400, f"no file in the upload (multipart field '{FIELD}')")
