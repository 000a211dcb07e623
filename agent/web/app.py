"""The FastAPI app of ``vidagent serve``: the page, and the REST API under ``/api``.

Routes (documented at ``/docs`` and ``/openapi.json``):

- ``GET /api/server``: whether an API key is needed, the upload limit (no key needed);
- ``GET /api/videos``, ``POST /api/videos`` (multipart upload, field ``file``),
  ``GET /api/videos/{id}``, ``GET /api/videos/{id}/media`` (HTTP Range);
- ``POST /api/videos/{id}/timeline`` starts perception, ``GET`` polls it;
- ``POST /api/sessions``, ``POST /api/sessions/{id}/messages`` (a turn as Server-Sent Events:
  ``text``, ``tool_call``, ``tool_result``, then ``done`` or ``error``),
  ``POST /api/sessions/{id}/reset``, ``DELETE /api/sessions/{id}``.

With an API key every ``/api`` route but ``/api/server`` needs it, as ``Authorization: Bearer KEY``,
``X-API-Key: KEY`` or ``?key=KEY`` (for the ``<video>`` element's media URL). Errors are JSON
``{"detail": "..."}``. Every request must name the server in its Host header, a state-changing one
must not come from another site's page, and every response carries the security headers
(:mod:`vidagent.web.guard`). Chat sessions are capped and expire (:mod:`vidagent.web.sessions`):
posting a question to a busy session is 409, resetting it cancels the running answer.
"""

from __future__ import annotations

import contextlib
import mimetypes
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import FileResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from vidagent.web.backend import Backend
from vidagent.web.config import (
    MessageIn,
    ServeConfig,
    ServerInfo,
    SessionCreate,
    SessionOut,
    TimelineOut,
    VideoDetail,
    VideoOut,
)
from vidagent.web.guard import Guard, HostPolicy
from vidagent.web.library import StoredVideo, UploadError, VideoLibrary
from vidagent.web.sessions import (
    Session,
    SessionBusy,
    Sessions,
    SessionsFull,
    TooManyTurns,
    Turn,
)
from vidagent.web.timelines import Timelines
from vidagent.web.upload import MultipartFile

STATIC = Path(__file__).parent / "static"
VERSION = "0.1.0"

UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
SSE_DOC = {
    200: {
        "description": "Server-Sent Events: text, tool_call, tool_result, then done or error; "
        "each data line is JSON",
        "content": {"text/event-stream": {}},
    }
}


def _key_checker(api_key: str | None) -> Callable[[Request], Awaitable[None]]:
    async def check(request: Request) -> None:  # async: no worker thread for every request
        if api_key is None:
            return
        auth = request.headers.get("authorization", "")
        given = (
            auth[7:].strip()
            if auth.lower().startswith("bearer ")
            else request.headers.get("x-api-key") or request.query_params.get("key") or ""
        )
        if not secrets.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or wrong API key: send 'Authorization: Bearer KEY', 'X-API-Key: KEY' "
                "or ?key=KEY",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


class TurnResponse(StreamingResponse):
    """The SSE stream of one turn; however the response ends (finished, client gone before or
    while it streams, cancelled), the turn is cancelled if still running and its session freed."""

    def __init__(self, turn: Turn) -> None:
        super().__init__(
            turn.events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.turn = turn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.turn.cancel("the client went away")


def create_app(config: ServeConfig, *, backend: Backend) -> FastAPI:
    """The app over ``backend``; uploads go to ``config.data_dir`` (created here)."""
    library = VideoLibrary(config.data_dir, config.videos_dir)
    library.setup()
    timelines = Timelines(backend)
    sessions = Sessions(backend, config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        sessions.close()
        timelines.close()
        await anyio.to_thread.run_sync(backend.close)  # may run its own event loop

    app = FastAPI(
        title="vidagent",
        version=VERSION,
        description="Chat about videos: upload, perceive into a timeline of segments, ask.",
        lifespan=lifespan,
    )
    app.state.config = config
    app.add_middleware(Guard, policy=HostPolicy.of(config.host, config.allowed_hosts))
    api = APIRouter(prefix="/api", dependencies=[Depends(_key_checker(config.api_key))])

    def video_out(video: StoredVideo) -> VideoOut:
        return VideoOut(
            id=video.id,
            name=video.name,
            source=video.source,
            size_bytes=video.size_bytes,
            media_url=f"/api/videos/{video.id}/media",
            timeline_status=timelines.status(video.id),
        )

    def find(video_id: str) -> StoredVideo:
        video = library.get(video_id)
        if video is None:
            raise HTTPException(404, f"no video {video_id!r}")
        return video

    def session_of(session_id: str) -> Session:
        session = sessions.get(session_id)
        if session is None:
            raise HTTPException(404, f"no chat session {session_id!r} (or it has expired)")
        return session

    @app.get("/api/server", response_model=ServerInfo, tags=["server"])
    def server_info() -> ServerInfo:
        """Whether the API needs a key and how large an upload may be."""
        return ServerInfo(
            auth_required=config.api_key is not None,
            max_upload_mb=config.max_upload_mb,
            version=VERSION,
        )

    @api.get("/videos", response_model=list[VideoOut], tags=["videos"])
    def list_videos() -> list[VideoOut]:
        """Uploaded videos (oldest first), then those of the server's --videos folder."""
        return [video_out(v) for v in library.list()]

    @api.post(
        "/videos",
        response_model=VideoOut,
        status_code=201,
        tags=["videos"],
        openapi_extra=UPLOAD_DOC,
        responses={413: {"description": "Too large"}, 415: {"description": "Not a video"}},
    )
    async def upload_video(request: Request) -> VideoOut:
        """Upload a video (multipart field ``file``); it is checked by decoding it."""
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > config.max_upload_bytes + 65536:
            raise HTTPException(413, f"too large; the limit is {config.max_upload_mb:g} MB")
        try:
            upload = MultipartFile(request.headers.get("content-type", ""), request.stream())
            video = await library.store_upload(upload, config.max_upload_mb)
        except UploadError as err:
            raise HTTPException(err.status, str(err)) from None
        return video_out(video)

    @api.get("/videos/{video_id}", response_model=VideoDetail, tags=["videos"])
    async def video_info(video_id: str) -> VideoDetail:
        """Metadata of a video (duration, fps, size, codec)."""
        from vidagent.core.errors import VideoError
        from vidagent.tools.video import probe_video

        video = find(video_id)
        try:
            info = await anyio.to_thread.run_sync(lambda: probe_video(video.path, verify=False))
        except VideoError as err:
            raise HTTPException(415, f"{video.name}: {err.cause}") from None
        return VideoDetail(
            **video_out(video).model_dump(),
            duration=info.duration,
            fps=info.fps,
            num_frames=info.num_frames,
            width=info.width,
            height=info.height,
            codec=info.codec,
        )

    @api.get(
        "/videos/{video_id}/media",
        tags=["videos"],
        response_class=FileResponse,
        responses={206: {"description": "Partial content (Range request)"}},
    )
    def video_media(video_id: str) -> FileResponse:
        """The video's bytes; honours HTTP Range so a player can seek."""
        video = find(video_id)
        kind = mimetypes.guess_type(video.path.name)[0] or "application/octet-stream"
        return FileResponse(video.path, media_type=kind, content_disposition_type="inline")

    @api.post("/videos/{video_id}/timeline", response_model=TimelineOut, tags=["timeline"])
    def start_timeline(video_id: str) -> TimelineOut:
        """Start perceiving the video (once; again after a failure); poll with GET."""
        video = find(video_id)
        timelines.start(video.id, video.path)
        return timelines.describe(video.id)

    @api.get("/videos/{video_id}/timeline", response_model=TimelineOut, tags=["timeline"])
    def get_timeline(video_id: str) -> TimelineOut:
        """The perception state; with status ``done`` the segments and their captions."""
        return timelines.describe(find(video_id).id)

    @api.post("/sessions", response_model=SessionOut, status_code=201, tags=["chat"])
    def create_session(body: SessionCreate) -> SessionOut:
        """A chat session about a video whose timeline is done."""
        video = find(body.video_id)
        deps = timelines.deps(video.id)
        if deps is None:
            raise HTTPException(
                409, f"the timeline of {video.name!r} is not ready; POST its /timeline first"
            )
        try:
            session = sessions.create(video.id, deps)
        except SessionsFull as err:
            raise HTTPException(503, str(err), headers={"Retry-After": "5"}) from None
        return SessionOut(id=session.id, video_id=session.video_id, turns=0)

    @api.get("/sessions/{session_id}", response_model=SessionOut, tags=["chat"])
    def get_session(session_id: str) -> SessionOut:
        session = session_of(session_id)
        return SessionOut(id=session.id, video_id=session.video_id, turns=session.turns)

    @api.post(
        "/sessions/{session_id}/messages",
        tags=["chat"],
        response_class=StreamingResponse,
        responses={
            **SSE_DOC,  # type: ignore[dict-item]
            409: {"description": "A turn is already running"},
            503: {"description": "Too many answers being computed"},
        },
    )
    async def send_message(session_id: str, body: MessageIn) -> StreamingResponse:
        """Ask a question; the answer streams back as Server-Sent Events."""
        try:
            turn = sessions.start_turn(session_of(session_id), body.text)
        except SessionBusy as err:
            raise HTTPException(409, str(err)) from None
        except TooManyTurns as err:
            raise HTTPException(503, str(err), headers={"Retry-After": "5"}) from None
        return TurnResponse(turn)

    @api.post("/sessions/{session_id}/reset", status_code=204, tags=["chat"])
    async def reset_session(session_id: str) -> None:
        """Forget the conversation (the video stays); a running answer is cancelled (its stream
        ends with an ``error`` event). Never waits."""
        sessions.reset(session_of(session_id))

    @api.delete("/sessions/{session_id}", status_code=204, tags=["chat"])
    async def delete_session(session_id: str) -> None:
        if not sessions.delete(session_id):
            raise HTTPException(404, f"no chat session {session_id!r}")

    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    from fastapi.staticfiles import StaticFiles

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
