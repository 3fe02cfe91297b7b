"""/api/login, /api/logout, /api/session and /api/password: signing in and out."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from ..errors import ConsoleError
from .accounts import change_password, load_account, store_key_text
from .deps import SESSION_COOKIE, CurrentSession, Db, Settings, client_address
from .passwords import verify_password
from .schemas import LoginRequest, PasswordChange, SessionInfo
from .sessions import LoginThrottled, Session, authenticate, close_session, open_session, token_hash

router = APIRouter(prefix="/api", tags=["session"])


def _info(session: Session) -> SessionInfo:
    account = session.account
    return SessionInfo(username=account.username, role=account.role,  # type: ignore[arg-type]
                       stores=sorted(store_key_text(k) for k in account.stores), csrf_token=session.csrf_token,
                       expires_at=session.expires_at)


@router.post("/login", response_model=SessionInfo, responses={401: {}, 429: {}})
def login(body: LoginRequest, request: Request, response: Response, db: Db,
          settings: Settings) -> SessionInfo:
    """Check the password and open a session: an HttpOnly SameSite=Strict cookie, and the CSRF token."""
    client = client_address(request)
    try:
        account = authenticate(db, body.username, body.password, client, settings.login_limits)
    except LoginThrottled as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    if account is None:
        raise HTTPException(401, "wrong username or password")
    session = open_session(db, account, client, settings.session_lifetime)
    response.set_cookie(SESSION_COOKIE, session.token, max_age=int(settings.session_lifetime.total_seconds()),
                        path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return _info(session)


@router.post("/logout", status_code=204, response_class=Response)
def logout(session: CurrentSession, db: Db) -> Response:
    """End the session and clear its cookie."""
    close_session(db, session.token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/session", response_model=SessionInfo)
def current(session: CurrentSession) -> SessionInfo:
    """Who is logged in, and the CSRF token to send with changes (the page asks on load)."""
    return _info(session)


@router.post("/password", status_code=204, response_class=Response)
def new_password(body: PasswordChange, session: CurrentSession,
                 db: Db) -> Response:
    """Change one's own password; every other session of the account ends."""
    with db.read() as connection:
        found = load_account(connection, user_id=session.account.id)
    if found is None or not verify_password(body.current_password, found[1]):
        raise HTTPException(403, "the current password is wrong")
    try:
        change_password(db, session.account, body.new_password, keep_session=token_hash(session.token))
    except ConsoleError as exc:
        raise HTTPException(422, str(exc)) from None
    return Response(status_code=204)
