"""`GET /api/documents/{id}?u=&exp=&sig=`: a generated document (a PDF), once, through its signed link."""
from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from rest.app_keys import SHARED


async def download_document(request: web.Request) -> web.Response:
    """The document, then it is gone; 404 for a link that is forged, expired or used."""
    query = request.query
    document = await request.app[SHARED].documents.redeem(request.match_info["document_id"], query.get("u", ""),
                                                          query.get("exp", ""), query.get("sig", ""))
    return web.Response(body=document.content, headers={
        "Content-Type": document.mime, "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(document.filename)}"})


def setup(app: web.Application) -> None:
    """Add the document route."""
    app.router.add_get("/api/documents/{document_id}", download_document)
