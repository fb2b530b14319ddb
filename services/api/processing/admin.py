"""Admin-only resources: users, API keys, and writes to the risk matrix (viewers read it)."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import func, select

from services.api import schemas as s
from services.api.deps import Admin, PageDep, SessionDep, Viewer, user_cache
from services.api.errors import ERROR_RESPONSES, ITEM_RESPONSES, WRITE_RESPONSES, FieldInvalid
from services.api.processing.crud import commit, get_or_404, row_values
from shared.contracts.enums import Role
from shared.domain.risk import RiskMatrix
from shared.infrastructure.auth import hash_password, new_api_key
from shared.persistence.models import ApiKey, RiskMatrixCell, User

router = APIRouter()


# --- users ----------------------------------------------------------------------------------


def _forget_user(request: Request, user_id: int) -> None:
    """After the commit: this process's next request of that user reads the new row."""
    cache = user_cache(request)
    if cache is not None:
        cache.invalidate(user_id)


@router.get("/users", response_model=list[s.UserRead], tags=["users"], responses=ERROR_RESPONSES)
async def list_users(
    session: SessionDep,
    admin: Admin,
    response: Response,
    page: PageDep,
    role: Role | None = None,
    is_active: bool | None = None,
) -> list[User]:
    stmt = select(User)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if is_active is not None:
        stmt = stmt.where(User.is_active == is_active)
    response.headers["X-Total-Count"] = str(
        await session.scalar(select(func.count()).select_from(stmt.subquery()))
    )
    return list(await session.scalars(stmt.order_by(User.id).limit(page.limit).offset(page.offset)))


@router.post(
    "/users",
    response_model=s.UserRead,
    status_code=201,
    tags=["users"],
    responses=WRITE_RESPONSES,
)
async def create_user(
    request: Request, body: s.UserCreate, session: SessionDep, admin: Admin
) -> User:
    user = User(
        email=body.email.strip().lower(),
        full_name=body.full_name,
        password_hash=hash_password(body.password),
        role=body.role,
        is_active=body.is_active,
    )
    session.add(user)
    await commit(request, session)
    await session.refresh(user)
    return user


@router.get("/users/{item_id}", response_model=s.UserRead, tags=["users"], responses=ITEM_RESPONSES)
async def get_user(item_id: s.PathId, session: SessionDep, admin: Admin) -> User:
    return await get_or_404(session, User, item_id, "user")


@router.patch(
    "/users/{item_id}",
    response_model=s.UserRead,
    tags=["users"],
    responses=WRITE_RESPONSES,
    description="Changing a user's password, role or is_active revokes every token they hold, "
    "at once (through another API process: within WIMS_API_USER_CACHE_S); they log in again.",
)
async def update_user(
    request: Request, item_id: s.PathId, body: s.UserUpdate, session: SessionDep, admin: Admin
) -> User:
    user = await get_or_404(session, User, item_id, "user")
    changes = body.model_dump(exclude_unset=True)
    if user.id == admin.id and (
        changes.get("is_active") is False or changes.get("role", Role.admin) != Role.admin
    ):
        # The last way back in must not be locked by accident.
        field = "is_active" if changes.get("is_active") is False else "role"
        raise FieldInvalid(field, "an admin cannot demote or deactivate themselves")
    revoke = False
    for name, value in changes.items():
        if value is None:
            raise FieldInvalid(name, "must not be null")
        if name == "password":
            user.password_hash = hash_password(value)
            revoke = True
        else:
            # A role or activation change ends the user's sessions too: a token issued to
            # an engineer is not reused as a viewer's, and a reactivated user logs in again
            # rather than having their old tokens come back.
            revoke = revoke or (name in ("role", "is_active") and getattr(user, name) != value)
            setattr(user, name, value)
    if revoke:
        user.token_version = User.token_version + 1  # in SQL: no lost bump between processes
    await commit(request, session)
    _forget_user(request, user.id)
    await session.refresh(user)
    return user


@router.delete("/users/{item_id}", status_code=204, tags=["users"], responses=ITEM_RESPONSES)
async def delete_user(
    request: Request, item_id: s.PathId, session: SessionDep, admin: Admin
) -> Response:
    user = await get_or_404(session, User, item_id, "user")
    if user.id == admin.id:
        raise FieldInvalid("id", "an admin cannot delete themselves")
    await session.delete(user)
    await commit(request, session)
    _forget_user(request, item_id)
    return Response(status_code=204)


# --- API keys -------------------------------------------------------------------------------


@router.get(
    "/api-keys", response_model=list[s.ApiKeyRead], tags=["api keys"], responses=ERROR_RESPONSES
)
async def list_api_keys(
    session: SessionDep,
    admin: Admin,
    response: Response,
    page: PageDep,
    source: s.Text | None = None,
    revoked: Annotated[bool | None, Query(description="true: only revoked keys")] = None,
) -> list[ApiKey]:
    stmt = select(ApiKey)
    if source is not None:
        stmt = stmt.where(ApiKey.source == source)
    if revoked is not None:
        stmt = stmt.where(
            ApiKey.revoked_at.is_not(None) if revoked else ApiKey.revoked_at.is_(None)
        )
    response.headers["X-Total-Count"] = str(
        await session.scalar(select(func.count()).select_from(stmt.subquery()))
    )
    return list(
        await session.scalars(stmt.order_by(ApiKey.id).limit(page.limit).offset(page.offset))
    )


@router.post(
    "/api-keys",
    response_model=s.ApiKeyCreated,
    status_code=201,
    tags=["api keys"],
    responses=WRITE_RESPONSES,
    description="The secret is in this answer only; the server keeps its SHA-256 hash.",
)
async def create_api_key(
    request: Request, body: s.ApiKeyCreate, session: SessionDep, admin: Admin
) -> s.ApiKeyCreated:
    secret, prefix, key_hash = new_api_key()
    key = ApiKey(
        name=body.name,
        source=body.source,
        key_prefix=prefix,
        key_hash=key_hash,
        created_by_id=admin.id,
    )
    session.add(key)
    await commit(request, session)
    await session.refresh(key)
    return s.ApiKeyCreated(**s.ApiKeyRead.model_validate(key).model_dump(), secret=secret)


@router.get(
    "/api-keys/{item_id}", response_model=s.ApiKeyRead, tags=["api keys"], responses=ITEM_RESPONSES
)
async def get_api_key(item_id: s.PathId, session: SessionDep, admin: Admin) -> ApiKey:
    return await get_or_404(session, ApiKey, item_id, "API key")


@router.delete(
    "/api-keys/{item_id}",
    response_model=s.ApiKeyRead,
    tags=["api keys"],
    responses=ITEM_RESPONSES,
    description="Revokes the key (sets revoked_at); the record stays for the audit trail.",
)
async def revoke_api_key(
    request: Request, item_id: s.PathId, session: SessionDep, admin: Admin
) -> ApiKey:
    key = await get_or_404(session, ApiKey, item_id, "API key")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await commit(request, session)
        await session.refresh(key)
    return key


# --- risk matrix ----------------------------------------------------------------------------


async def _matrix(session: Any) -> s.RiskMatrixRead:
    cells = await session.scalars(
        select(RiskMatrixCell).order_by(
            RiskMatrixCell.probability_level, RiskMatrixCell.consequence_level
        )
    )
    return s.RiskMatrixRead(
        cells=[s.RiskCell.model_validate(c, from_attributes=True) for c in cells]
    )


@router.get(
    "/risk-matrix", response_model=s.RiskMatrixRead, tags=["risk matrix"], responses=ERROR_RESPONSES
)
async def get_risk_matrix(session: SessionDep, user: Viewer) -> s.RiskMatrixRead:
    return await _matrix(session)


@router.put(
    "/risk-matrix",
    response_model=s.RiskMatrixRead,
    tags=["risk matrix"],
    responses=ERROR_RESPONSES,
    description="Replaces the whole 5 x 5 matrix: all 25 cells, each once.",
)
async def put_risk_matrix(
    request: Request, body: s.RiskMatrixUpdate, session: SessionDep, admin: Admin
) -> s.RiskMatrixRead:
    try:
        # Duplicates and missing cells are refused here, by the domain's one validation path.
        matrix = RiskMatrix.from_cells(
            (c.probability_level, c.consequence_level, c.category) for c in body.cells
        )
    except ValueError as exc:
        raise FieldInvalid("cells", str(exc)) from None
    for (p, c), category in matrix.items():
        cell = await session.get(RiskMatrixCell, (p, c))
        if cell is None:
            session.add(RiskMatrixCell(probability_level=p, consequence_level=c, category=category))
        else:
            cell.category = category
    await commit(request, session)
    return await _matrix(session)


@router.patch(
    "/risk-matrix/{probability_level}/{consequence_level}",
    response_model=s.RiskCell,
    tags=["risk matrix"],
    responses=ITEM_RESPONSES,
)
async def patch_risk_cell(
    request: Request,
    probability_level: s.RiskLevel,
    consequence_level: s.RiskLevel,
    body: s.RiskCellUpdate,
    session: SessionDep,
    admin: Admin,
) -> s.RiskCell:
    cell = await get_or_404(
        session,
        RiskMatrixCell,
        (probability_level, consequence_level),
        f"risk cell ({probability_level}, {consequence_level}) -",
    )
    cell.category = body.category
    await commit(request, session)
    return s.RiskCell(**{k: v for k, v in row_values(cell).items()})
