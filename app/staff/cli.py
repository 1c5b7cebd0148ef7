"""`appeals staff ...`: create staff accounts and API tokens from the command line."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
from pydantic import BaseModel, StringConstraints, ValidationError

from app.config import get_settings
from app.db import create_sessionmaker, engine_for
from app.errors import AppError, NotFound
from app.staff import accounts
from app.staff.models import Role
from app.staff.schemas import Password, StaffIn
from app.text import ONE_LINE

PASSWORD_ENV = "APPEALS_STAFF_PASSWORD"

staff_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)


async def _create(email: str, password: str, roles: set[Role], name: str) -> int:
    settings = get_settings()
    engine = engine_for(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            staff = await accounts.create_staff(
                session,
                email=email,
                password=password,
                roles=roles,
                name=name,
                settings=settings,
                actor=None,
            )
            await session.commit()
            return staff.id
    finally:
        await engine.dispose()


EmailArg = typer.Argument(..., help="The staff member's e-mail address (their login).")
RoleOpt = typer.Option(..., "--role", help="A role; repeat for several.")
NameOpt = typer.Option("", help="Display name.")


@staff_app.command("create")
def create(email: str = EmailArg, role: list[Role] = RoleOpt, name: str = NameOpt) -> None:
    """Create a staff member with one or more roles.

    The password is asked for on the terminal, or read from APPEALS_STAFF_PASSWORD for scripts
    (never from the command line, where other users of the machine could read it).
    """
    password = os.environ.get(PASSWORD_ENV) or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        data = StaffIn(email=email, name=name, password=password, roles=set(role))
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"error: {'.'.join(map(str, error['loc']))}: {error['msg']}", err=True)
        raise typer.Exit(1) from None
    try:
        staff_id = asyncio.run(_create(data.email, data.password, data.roles, data.name))
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"staff member {staff_id} created: {data.email} ({', '.join(sorted(data.roles))})")


async def _set_password(email: str, password: str) -> None:
    settings = get_settings()
    engine = engine_for(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            staff = await accounts.get_staff_by_email(session, email=email)
            if staff is None:
                raise NotFound(
                    "No staff member with the address {email}.", field="email", email=email
                )
            await accounts.set_password(
                session, staff=staff, password=password, settings=settings, actor=None
            )
            await session.commit()
    finally:
        await engine.dispose()


class _PasswordChange(BaseModel):
    # The address is looked up as it was given (through app.text's gate), not judged again.
    email: Annotated[str, StringConstraints(max_length=254), ONE_LINE]
    password: Password


@staff_app.command("set-password")
def set_password(email: str = EmailArg) -> None:
    """Give a staff member a new password (their sessions end). Read like `create`'s."""
    password = os.environ.get(PASSWORD_ENV) or typer.prompt(
        "New password", hide_input=True, confirmation_prompt=True
    )
    try:
        change = _PasswordChange(email=email, password=password)
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"error: {'.'.join(map(str, error['loc']))}: {error['msg']}", err=True)
        raise typer.Exit(1) from None
    try:
        asyncio.run(_set_password(change.email, change.password))
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"password changed: {email.strip().lower()}")
