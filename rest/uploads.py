"""`POST /api/uploads` (multipart field `file`) and `GET /api/uploads/{id}`."""
from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from errors import InvalidPayload, PayloadTooLarge
from handlers.chat.uploads import UploadHandler
from realtime.schemas.chat import AttachmentOut
from rest.app_keys import CHAT
from rest.auth import require_user

READ_CHUNK = 64 * 1024
ATTACHMENT = AttachmentOut()
MULTIPART_OVERHEAD = 16 * 1024


def _handler(request: web.Request) -> UploadHandler:
    return request.app[CHAT].uploads


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(READ_CHUNK):
        yield chunk


async def create_upload(request: web.Request) -> web.Response:
    """Store one file, streamed; 413 over the limit, 415 for content of another type."""
    user = require_user(request)
    handler = _handler(request)
    if (request.content_length or 0) > handler.max_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"The file is larger than {handler.max_bytes} bytes")
    if not request.content_type.startswith("multipart/"):
        raise InvalidPayload("Send multipart/form-data with a field named 'file'", {"file": ["Required."]})
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.name == "file":
            upload = await handler.save(user, part.filename, _chunks(part))
            return web.json_response(ATTACHMENT.dump(upload.attachment()), status=201)
    raise InvalidPayload("A multipart field named 'file' is required", {"file": ["Required."]})


async def download_upload(request: web.Request) -> web.StreamResponse:
    """Stream a file to its uploader and to members of conversations it was sent to; 404 for anyone else."""
    user = require_user(request)
    handler = _handler(request)
    upload = await handler.readable(user, request.match_info["upload_id"])
    response = web.StreamResponse(headers={
        "Content-Type": upload.mime,
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(upload.name)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    })
    response.content_length = upload.size
    await response.prepare(request)
    async for chunk in handler.store.content(upload.id):
        await response.write(chunk)
    await response.write_eof()
    return response


def setup(app: web.Application) -> None:
    """Add the upload routes."""
    app.router.add_post("/api/uploads", create_upload)
    app.router.add_get("/api/uploads/{upload_id}", download_upload)
