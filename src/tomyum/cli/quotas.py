"""``tomyum quotas alter | describe``: client quotas, as ``kafka-configs.sh --alter --add-config
producer_byte_rate=1024 --entity-type users --entity-name alice`` sets them (AlterClientQuotas,
DescribeClientQuotas, KIP-546).

librdkafka has no quota API, so these two requests go over a connection of their own
(:mod:`tomyum.cli.raw`) with ``--command-config``'s security settings.

An entity is ``--user NAME``, ``--client-id NAME``, ``--ip ADDRESS``, or their combination; the
default entity of a type is ``--entity-type user --entity-default``.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, Bootstrap, CliError, CommandConfig, Timeout
from tomyum.cli.common import client_config, print_table, say
from tomyum.cli.parsing import parse_pairs

app = typer.Typer(no_args_is_help=True, help="Set and show client quotas (byte rates, request percentage, ...).")

ALTER_CLIENT_QUOTAS, DESCRIBE_CLIENT_QUOTAS = 49, 48
MATCH_EXACT, MATCH_DEFAULT = 0, 1
QUOTAS = ("producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate",
          "connection_creation_rate")


class EntityType(str, enum.Enum):
    user = "user"
    client_id = "client-id"
    ip = "ip"


UserOption = Annotated[str | None, typer.Option("--user", metavar="NAME", help="the user (principal name)",
                                                show_default=False)]
ClientIdOption = Annotated[str | None, typer.Option("--client-id", metavar="ID", help="the client id",
                                                    show_default=False)]
IpOption = Annotated[str | None, typer.Option("--ip", metavar="ADDRESS", help="the client address",
                                              show_default=False)]
DefaultTypes = Annotated[list[EntityType], typer.Option(
    "--entity-type", help="with --entity-default: the type whose default entity is meant (repeatable)")]
EntityDefault = Annotated[bool, typer.Option("--entity-default", help="the default entity of each --entity-type")]


def entity(user: str | None, client_id: str | None, ip: str | None, default_types: list[EntityType],
           entity_default: bool) -> dict[str, str | None]:
    """``{entity_type: name}``; ``None`` names the type's default entity."""
    named = {t: n for t, n in (("user", user), ("client-id", client_id), ("ip", ip)) if n is not None}
    if default_types and not entity_default:
        raise CliError("--entity-type names a default entity: add --entity-default", 2)
    if entity_default:
        if not default_types:
            raise CliError("--entity-default: say of which type, e.g. --entity-type user --entity-default", 2)
        named.update({t.value: None for t in default_types})
    return named


def describe_entity(e: Any) -> str:
    return ",".join(f"{x.entity_type}={'<default>' if x.entity_name is None else x.entity_name}"
                    for x in sorted(e, key=lambda x: x.entity_type))


def _connection(bootstrap: str, timeout: float, command_config: Any) -> Any:
    from tomyum.cli.raw import RawConnection

    return RawConnection(client_config(bootstrap, timeout, command_config), timeout)


@app.command("alter")
def alter(
    user: UserOption = None,
    client_id: ClientIdOption = None,
    ip: IpOption = None,
    default_types: DefaultTypes = [],  # noqa: B006
    entity_default: EntityDefault = False,
    add_config: Annotated[list[str], typer.Option("--add-config", metavar="QUOTA=VALUE[,QUOTA=VALUE...]",
                                                  help=f"set quotas ({', '.join(QUOTAS)})")] = [],  # noqa: B006
    delete_config: Annotated[list[str], typer.Option("--delete-config", metavar="QUOTA[,QUOTA...]",
                                                     help="remove quotas")] = [],  # noqa: B006
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Set or remove quotas of a user, a client id, an address, or a default entity."""
    from kio.schema.alter_client_quotas.v1 import request

    target = entity(user, client_id, ip, default_types, entity_default)
    if not target:
        raise CliError("name the entity: --user NAME, --client-id ID, --ip ADDRESS, "
                       "or --entity-type TYPE --entity-default", 2)
    settings = parse_pairs([p for item in add_config for p in item.split(",") if p], "--add-config")
    deletes = [k.strip() for item in delete_config for k in item.split(",") if k.strip()]
    if not settings and not deletes:
        raise CliError("nothing to change: --add-config QUOTA=VALUE or --delete-config QUOTA", 2)
    ops = []
    for key, value in settings.items():
        try:
            ops.append(request.OpData(key=key, value=float(value), remove=False))
        except ValueError:
            raise CliError(f"--add-config: {key}={value!r}: expected a number", 2) from None
    ops += [request.OpData(key=key, value=0.0, remove=True) for key in deletes]
    body = request.AlterClientQuotasRequest(validate_only=False, entries=(request.EntryData(
        entity=tuple(request.EntityData(entity_type=t, entity_name=n) for t, n in target.items()), ops=tuple(ops)),))
    with _connection(bootstrap, timeout, command_config) as connection:
        response = connection.send(ALTER_CLIENT_QUOTAS, 1, body)
    label = describe_entity(response.entries[0].entity) if response.entries else str(target)
    for result in response.entries:
        if result.error_code:
            from tomyum.errors import for_code

            raise CliError(f"cannot alter quotas of {label}: {result.error_message or for_code(result.error_code).name}"
                           + (f" (quotas: {', '.join(QUOTAS)})" if result.error_code == 42 else ""))
    say(f"updated quotas of {label}: " + ", ".join([f"{k}={v}" for k, v in settings.items()]
                                                  + [f"{k} removed" for k in deletes]))


@app.command("describe")
def describe(
    user: UserOption = None,
    client_id: ClientIdOption = None,
    ip: IpOption = None,
    default_types: DefaultTypes = [],  # noqa: B006
    entity_default: EntityDefault = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Show quotas: all of them, or those of the entities named."""
    from kio.schema.describe_client_quotas.v1 import request

    target = entity(user, client_id, ip, default_types, entity_default)
    body = request.DescribeClientQuotasRequest(strict=False, components=tuple(
        request.ComponentData(entity_type=t, match_type=MATCH_DEFAULT if n is None else MATCH_EXACT, match=n)
        for t, n in target.items()))
    with _connection(bootstrap, timeout, command_config) as connection:
        response = connection.send(DESCRIBE_CLIENT_QUOTAS, 1, body)
    if response.error_code:
        from tomyum.errors import for_code

        raise CliError(f"cannot describe quotas: {response.error_message or for_code(response.error_code).name}")
    print_table(["ENTITY", "QUOTA", "VALUE"],
                sorted((describe_entity(e.entity), v.key, f"{v.value:g}") for e in response.entries for v in e.values),
                empty="no quotas")
