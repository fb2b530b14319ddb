"""A generic CRUD router for the resources that are alike (most of the data model).

A :class:`Resource` names its model, schemas, parent (for the nested create/list routes),
filters and sort keys, and two hooks:

- ``validate(session, obj, ctx)``: checks the merged row (create or update) against the
  well it belongs to; raises :class:`FieldInvalid` naming the field;
- ``changed(session, obj, ctx)``: runs after the change is flushed, in the same
  transaction: writes the outbox records stream processors need.

Routes made (``parent`` set): ``GET/POST /{parent}/{parent_id}/{path}`` and
``GET/PATCH/DELETE /{path}/{id}``; ``flat_collection`` adds ``GET/POST /{path}``.
Reads need viewer, writes engineer, deletions admin, unless the resource says otherwise.

Its statements (ORM selects, counts, adds and deletes of the resource's model, all tables
the api owns) stay here rather than in ``services/api/store.py``: they are generic over the
model, one set for every resource.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Interval
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy import BigInteger, Integer, SmallInteger, func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.deps import PageDep, SessionDep, require_role
from services.api.errors import ITEM_RESPONSES, WRITE_RESPONSES, FieldInvalid, NotFound
from services.api.schemas import PathId, Text, Timestamp
from shared.contracts.enums import Role
from shared.persistence.models import Base, User


@dataclass
class Ctx:
    """What a hook knows about the request."""

    user: User
    action: Literal["create", "update", "delete"]
    parent: Any = None
    old: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    settings: Any = None  # the app's Settings


Hook = Callable[[AsyncSession, Any, Ctx], Awaitable[None]]


@dataclass(frozen=True)
class Parent:
    model: type[Base]
    path: str  # "wells"
    fk: str  # "well_id"
    label: str  # "well"


@dataclass(frozen=True)
class Resource:
    model: type[Base]
    path: str  # "casing-strings"; the flat item routes live under it
    label: str  # "casing string"
    tag: str
    create: type[BaseModel]
    update: type[BaseModel]
    read: type[BaseModel]
    parent: Parent | None = None
    flat_collection: bool = False
    filters: dict[str, Any] = field(default_factory=dict)  # query name -> type
    # Date-time columns filtered by range: ``{name}_from`` (inclusive) and ``{name}_to``.
    range_filters: tuple[str, ...] = ()
    sort_fields: tuple[str, ...] = ("id",)
    read_role: Role = Role.viewer
    write_role: Role = Role.engineer
    delete_role: Role = Role.admin
    validate: Hook | None = None
    changed: Hook | None = None
    before_delete: Hook | None = None
    prepare: Hook | None = None  # fills derived fields of a new row (e.g. who recorded it)
    description: str = ""
    nested_path: str | None = None  # under the parent, when it differs from ``path``


def _settings(request: Request) -> Any:
    return getattr(request.app.state, "settings", None)


async def get_or_404(session: AsyncSession, model: type[Base], item_id: int, label: str) -> Any:
    obj = await session.get(model, item_id)
    if obj is None:
        raise NotFound(f"{label} {item_id} not found")
    return obj


async def commit(request: Request, session: AsyncSession) -> None:
    """The request's one commit point; wakes the outbox relay so a config change reaches
    Kafka at once rather than at the next poll."""
    await session.commit()
    relay = getattr(request.app.state, "relay", None)
    if relay is not None:
        relay.wake()


async def refresh_or_404(session: AsyncSession, obj: Any, label: str) -> None:
    """Reads back the committed row; a request that deleted it in between (a concurrent
    DELETE) leaves nothing to answer with: 404, as a request arriving after it would get."""
    item_id = obj.id  # read now: a failed refresh leaves the instance expired
    try:
        await session.refresh(obj)
    except InvalidRequestError:
        raise NotFound(f"{label} {item_id} was deleted meanwhile") from None


def row_values(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def apply_update(obj: Any, changes: dict[str, Any]) -> None:
    columns = obj.__table__.columns
    for name, value in changes.items():
        if value is None and not columns[name].nullable:
            raise FieldInvalid(name, "must not be null")
        setattr(obj, name, value)


# A filter is compared with its column: text without NUL, an integer within the column's
# type, so PostgreSQL never refuses the value and the OpenAPI declares the bounds.
_INT_BOUNDS = {SmallInteger: 2**15 - 1, BigInteger: 2**63 - 1, Integer: 2**31 - 1}


def _filter_type(res: Resource, name: str, typ: Any) -> Any:
    if typ is str:
        return Text
    if typ is int:
        column_type = type(res.model.__table__.columns[name].type)
        most = next(v for k, v in _INT_BOUNDS.items() if issubclass(column_type, k))
        return Annotated[int, Interval(ge=-most - 1, le=most)]
    return typ


def _filter_model(res: Resource) -> type[BaseModel]:
    sort_values = tuple(v for f in res.sort_fields for v in (f, f"-{f}"))
    fields: dict[str, Any] = {
        name: (_filter_type(res, name, typ) | None, None) for name, typ in res.filters.items()
    }
    for name in res.range_filters:
        fields[f"{name}_from"] = (Timestamp | None, Query(None, description=f"{name} >= this"))
        fields[f"{name}_to"] = (Timestamp | None, Query(None, description=f"{name} < this"))
    fields["sort"] = (
        Literal[sort_values] | None,  # type: ignore[valid-type]
        Query(None, description="sort key; a leading '-' sorts descending"),
    )
    model_name = "".join(p.capitalize() for p in res.path.split("-")) + "Filters"
    return create_model(model_name, __config__=ConfigDict(extra="ignore"), **fields)


def _list_statement(res: Resource, filters: BaseModel, parent_id: int | None) -> Any:
    stmt = select(res.model)
    if parent_id is not None and res.parent is not None:
        stmt = stmt.where(getattr(res.model, res.parent.fk) == parent_id)
    for name in res.filters:
        value = getattr(filters, name)
        if value is not None:
            stmt = stmt.where(getattr(res.model, name) == value)
    for name in res.range_filters:
        column = getattr(res.model, name)
        low, high = getattr(filters, f"{name}_from"), getattr(filters, f"{name}_to")
        if low is not None:
            stmt = stmt.where(column >= low)
        if high is not None:
            stmt = stmt.where(column < high)
    return stmt


def crud_router(res: Resource) -> APIRouter:
    """The routes of one resource: list and create (nested under its parent and/or flat),
    then get, change and delete one item, in that order."""
    router = APIRouter(tags=[res.tag])
    filters = _filter_model(res)
    reader = require_role(res.read_role)
    writer = require_role(res.write_role)
    if res.parent is not None:
        _nested_routes(router, res, filters, reader, writer)
    if res.flat_collection:
        _flat_routes(router, res, filters, reader, writer)
    _item_routes(router, res, reader, writer, require_role(res.delete_role))
    return router


async def _list(
    res: Resource,
    session: AsyncSession,
    response: Response,
    filters: BaseModel,
    page: Any,
    parent_id: int | None,
) -> list[Any]:
    stmt = _list_statement(res, filters, parent_id)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    response.headers["X-Total-Count"] = str(total)
    sort = getattr(filters, "sort", None) or "id"
    column = getattr(res.model, sort.lstrip("-"))
    order = column.desc() if sort.startswith("-") else column.asc()
    rows = await session.scalars(
        stmt.order_by(order, res.model.id).limit(page.limit).offset(page.offset)  # type: ignore[attr-defined]
    )
    return list(rows)


async def _create(
    res: Resource, request: Request, session: AsyncSession, user: User, body: BaseModel, parent: Any
) -> Any:
    values = body.model_dump()
    if res.parent is not None and parent is not None:
        # The specification's records carry their parent's id; a body may send it, and
        # then it must be the parent of the path.
        sent = values.get(res.parent.fk)
        if sent is not None and sent != parent.id:
            raise FieldInvalid(
                res.parent.fk, f"must be the {res.parent.label} of the path ({parent.id})"
            )
        values[res.parent.fk] = parent.id
    obj = res.model(**values)
    ctx = Ctx(user=user, action="create", parent=parent, settings=_settings(request))
    if res.prepare:
        await res.prepare(session, obj, ctx)
    if res.validate:
        await res.validate(session, obj, ctx)
    session.add(obj)
    await session.flush()
    if res.changed:
        await res.changed(session, obj, ctx)
    await commit(request, session)
    await refresh_or_404(session, obj, res.label)
    return obj


def _nested_routes(
    router: APIRouter, res: Resource, Filters: Any, reader: Any, writer: Any
) -> None:
    Create, Read, one = res.create, res.read, res.label
    assert res.parent is not None
    parent = res.parent
    nested = f"/{parent.path}/{{{parent.fk}}}/{res.nested_path or res.path}"

    @router.get(
        nested,
        response_model=list[Read],
        summary=f"List the {one}s of a {parent.label}",
        responses=ITEM_RESPONSES,
        dependencies=[reader],
    )
    async def list_nested(
        parent_id: Annotated[PathId, Path(alias=parent.fk)],
        session: SessionDep,
        response: Response,
        filters: Annotated[Filters, Query()],  # type: ignore[valid-type]
        page: PageDep,
    ) -> list[Any]:
        await get_or_404(session, parent.model, parent_id, parent.label)
        return await _list(res, session, response, filters, page, parent_id)

    @router.post(
        nested,
        response_model=Read,
        status_code=201,
        summary=f"Create a {one} in a {parent.label}",
        description=res.description,
        responses=WRITE_RESPONSES,
    )
    async def create_nested(
        request: Request,
        parent_id: Annotated[PathId, Path(alias=parent.fk)],
        body: Create,  # type: ignore[valid-type]
        session: SessionDep,
        user: Annotated[User, writer],
    ) -> Any:
        parent_obj = await get_or_404(session, parent.model, parent_id, parent.label)
        return await _create(res, request, session, user, body, parent_obj)


def _flat_routes(router: APIRouter, res: Resource, Filters: Any, reader: Any, writer: Any) -> None:
    Create, Read, one = res.create, res.read, res.label

    @router.get(
        f"/{res.path}",
        response_model=list[Read],
        summary=f"List {one}s",
        responses=ITEM_RESPONSES,
        dependencies=[reader],
    )
    async def list_flat(
        session: SessionDep,
        response: Response,
        filters: Annotated[Filters, Query()],  # type: ignore[valid-type]
        page: PageDep,
    ) -> list[Any]:
        return await _list(res, session, response, filters, page, None)

    @router.post(
        f"/{res.path}",
        response_model=Read,
        status_code=201,
        summary=f"Create a {one}",
        description=res.description,
        responses=WRITE_RESPONSES,
    )
    async def create_flat(
        request: Request,
        body: Create,  # type: ignore[valid-type]
        session: SessionDep,
        user: Annotated[User, writer],
    ) -> Any:
        return await _create(res, request, session, user, body, None)


def _item_routes(router: APIRouter, res: Resource, reader: Any, writer: Any, deleter: Any) -> None:
    Update, Read, one = res.update, res.read, res.label
    item = f"/{res.path}/{{item_id}}"

    @router.get(
        item,
        response_model=Read,
        summary=f"Get a {one}",
        responses=ITEM_RESPONSES,
        dependencies=[reader],
    )
    async def get_item(item_id: PathId, session: SessionDep) -> Any:
        return await get_or_404(session, res.model, item_id, one)

    @router.patch(
        item,
        response_model=Read,
        summary=f"Change a {one}",
        description=res.description,
        responses=WRITE_RESPONSES,
    )
    async def update_item(
        request: Request,
        item_id: PathId,
        body: Update,  # type: ignore[valid-type]
        session: SessionDep,
        user: Annotated[User, writer],
    ) -> Any:
        obj = await get_or_404(session, res.model, item_id, one)
        ctx = Ctx(user=user, action="update", old=row_values(obj), settings=_settings(request))
        apply_update(obj, body.model_dump(exclude_unset=True))
        if res.validate:
            await res.validate(session, obj, ctx)
        await session.flush()
        if res.changed:
            await res.changed(session, obj, ctx)
        await commit(request, session)
        await refresh_or_404(session, obj, one)
        return obj

    @router.delete(
        item,
        status_code=204,
        summary=f"Delete a {one} (admin)",
        responses=ITEM_RESPONSES,
    )
    async def delete_item(
        request: Request, item_id: PathId, session: SessionDep, user: Annotated[User, deleter]
    ) -> Response:
        obj = await get_or_404(session, res.model, item_id, one)
        ctx = Ctx(user=user, action="delete", old=row_values(obj), settings=_settings(request))
        if res.before_delete:
            await res.before_delete(session, obj, ctx)
        await session.delete(obj)
        await session.flush()
        if res.changed:
            await res.changed(session, obj, ctx)
        await commit(request, session)
        return Response(status_code=204)
