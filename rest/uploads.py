"""`POST /api/uploads` (multipart field `file`) and `GET /api/uploads/{id}`."""
from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from errors import InvalidPayload, PayloadTooLarge
from handlers.chat.uploads import UploadHandler
from realtime.schemas.chat import AttachmentOut
from rest.app_keys import CHAT
from rest.auth import require_user

log = logging.getLogger("careline.rest")
READ_CHUNK = 64 * 1024
#: what aiohttp's multipart reader raises on a body that is not multipart/form-data
MALFORMED = (ValueError, AssertionError, LookupError, UnicodeError, HttpProcessingError)
ATTACHMENT = AttachmentOut()
MULTIPART_OVERHEAD = 16 * 1024


def _handler(request: web.Request) -> UploadHandler:
    return request.app[CHAT].uploads


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    try:
        while chunk := await part.read_chunk(READ_CHUNK):
            yield chunk
    except MALFORMED:
        raise _malformed() from None


async def create_upload(request: web.Request) -> web.Response:
    """Store one file, streamed; 413 over the limit, 415 for content of another type."""
    user = require_user(request)
    handler = _handler(request)
    if (request.content_length or 0) > handler.max_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"The file is larger than {handler.max_bytes} bytes")
    if not request.content_type.startswith("multipart/"):
        raise InvalidPayload("Send multipart/form-data with a field named 'file'", {"file": ["Required."]})
    part = await _file_part(request)
    upload = await handler.save(user, _declared_name(part), _chunks(part))
    return web.json_response(ATTACHMENT.dump(upload.attachment()), status=201)


def _malformed() -> InvalidPayload:
    # never the parser's message: it may quote the header, and with it the file name
    return InvalidPayload("The body is not valid multipart/form-data", {"file": ["Not valid multipart."]})


async def _file_part(request: web.Request) -> BodyPartReader:
    try:
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and part.name == "file":
                return part
    except MALFORMED:
        raise _malformed() from None
    raise InvalidPayload("A multipart field named 'file' is required", {"file": ["Required."]})


def _declared_name(part: BodyPartReader) -> str | None:
    """The part's file name; a header aiohttp could not read gives an empty name (the checks refuse it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiohttp warns with the raw header, which may carry the name
        name = part.filename
    if name is None and "filename" in part.headers.get("Content-Disposition", ""):
        raise InvalidPayload("The file name is not valid", {"file": ["Not readable."]})
    return name


async def download_upload(request: web.Request) -> web.StreamResponse:
    """Stream a file to its uploader and to members of conversations it was sent to (with a bearer token, or
    a signed link from `upload:link`); 404 for anyone else."""
    handler = _handler(request)
    upload_id, query = request.match_info["upload_id"], request.query
    if "sig" in query:
        upload = await handler.readable_by_link(upload_id, query.get("u", ""), query.get("exp", ""), query["sig"])
    else:
        upload = await handler.readable(require_user(request).id, upload_id)
    response = web.StreamResponse(headers={
        "Content-Type": upload.mime,
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(upload.name)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    })
    response.content_length = upload.size
    try:
        await response.prepare(request)
        async for chunk in handler.store.content(upload.id):
            await response.write(chunk)
        await response.write_eof()
    except ConnectionError:  # the client went away mid-download: not our error
        log.debug("download aborted by the client")
    return response


def setup(app: web.Application) -> None:
    """Add the upload routes."""
    app.router.add_post("/api/uploads", create_upload)
    app.router.add_get("/api/uploads/{upload_id}", download_upload)
