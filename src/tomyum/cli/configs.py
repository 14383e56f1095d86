"""``tomyum configs describe | set``: topic and broker configs, as ``kafka-configs.sh`` shows and
changes them (DescribeConfigs, IncrementalAlterConfigs).

A broker is named by its id; without one, the broker with the lowest id. The cluster-wide default
layer (Kafka's ``--entity-default``, resource name ``""``) is out of reach: librdkafka refuses
a config resource with an empty name.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated

import typer

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, CommandConfig, Admin, Bootstrap, CliError, Timeout, print_table, say
from tomyum.cli.parsing import parse_pairs
from tomyum.cli.suggest import did_you_mean

if TYPE_CHECKING:
    from confluent_kafka.admin import ConfigResource

app = typer.Typer(no_args_is_help=True, help="Describe and change topic and broker configs.")


class Entity(str, enum.Enum):
    topic = "topic"
    broker = "broker"


ShowAll = Annotated[bool, typer.Option("--all", help="every config, defaults included (default: only those set)")]


def resource(admin: Admin, entity: Entity, name: str | None) -> ConfigResource:
    """The config resource for ``topic NAME`` or ``broker [ID|default]``."""
    from confluent_kafka.admin import ConfigResource, ResourceType

    if entity is Entity.topic:
        if not name:
            raise CliError("name the topic", 2)
        admin.topic(name)
        return ConfigResource(ResourceType.TOPIC, name)
    if name is not None and not name.isdigit():
        raise CliError(f"{name!r} is not a broker id (the cluster-wide default cannot be named through "
                       "librdkafka; kafka-configs.sh --entity-default can)", 2)
    brokers = sorted(admin.metadata().brokers)
    if name is None:
        name = str(brokers[0])
    elif int(name) not in brokers:  # librdkafka would wait its whole timeout for a broker it does not know
        raise CliError(f"there is no broker {int(name)} (brokers: {', '.join(map(str, brokers))})")
    return ConfigResource(ResourceType.BROKER, str(int(name)))


def label(r: ConfigResource) -> str:
    return f"{r.restype.name.lower()} {r.name!r}"


def show_configs(admin: Admin, r: ConfigResource, show_all: bool) -> None:
    """A NAME VALUE SOURCE table of ``r``'s configs; without ``show_all``, only those not at their default."""
    from confluent_kafka.admin import ConfigSource

    entries = admin.wait(admin.client.describe_configs([r], request_timeout=admin.timeout)[r],
                         f"cannot describe configs of {label(r)}")
    rows = [(e.name, "(sensitive)" if e.is_sensitive else e.value,
             ConfigSource(e.source).name.removesuffix("_CONFIG").lower().replace("_", " "))
            for e in sorted(entries.values(), key=lambda e: e.name) if show_all or not e.is_default]
    print_table(["NAME", "VALUE", "SOURCE"], rows, empty=f"no configs of {label(r)} differ from their defaults")


def alter_configs(admin: Admin, r: ConfigResource, settings: dict[str, str], deletes: list[str]) -> None:
    """Set and delete configs of ``r`` in one IncrementalAlterConfigs; the broker validates them."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ResourceType

    from tomyum.config import BROKER_CONFIGS, TOPIC_CONFIGS, broker_config_def

    for key, value in settings.items():
        r.add_incremental_config(ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET))
    for key in deletes:
        r.add_incremental_config(ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE))
    try:
        admin.wait(admin.client.incremental_alter_configs([r], request_timeout=admin.timeout)[r],
                   f"cannot change configs of {label(r)}")
    except CliError as e:
        known = TOPIC_CONFIGS if r.restype == ResourceType.TOPIC else BROKER_CONFIGS
        unknown = [k for k in [*settings, *deletes] if k not in known
                   and (r.restype == ResourceType.TOPIC or broker_config_def(k) is None)]
        raise CliError(f"{e}{did_you_mean(unknown[0], known)}" if unknown else str(e)) from None
    changes = [f"{k}={v}" for k, v in settings.items()] + [f"{k} (back to default)" for k in deletes]
    say(f"updated {label(r)}: {', '.join(changes)}")


@app.command("describe")
def describe(
    entity: Annotated[Entity, typer.Argument(help="topic or broker")],
    name: Annotated[str | None, typer.Argument(help="topic name or broker id [default for a broker: the lowest id]", show_default=False)] = None,
    show_all: ShowAll = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Show a topic's or a broker's configs with where each value comes from."""
    admin = Admin(bootstrap, timeout, command_config)
    show_configs(admin, resource(admin, entity, name), show_all)


@app.command("set")
def set_configs(
    entity: Annotated[Entity, typer.Argument(help="topic or broker")],
    args: Annotated[list[str] | None, typer.Argument(
        metavar="[NAME] [KEY=VALUE...]", help="topic name or broker id, then configs", show_default=False)] = None,
    delete: Annotated[list[str], typer.Option("--delete", "-d", metavar="KEY",
                                              help="return KEY to its default (repeatable)")] = [],  # noqa: B006
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Set configs of a topic or a broker (and return others to their defaults with --delete)."""
    args = args or []
    name = args[0] if args and "=" not in args[0] else None
    settings = parse_pairs(args[1:] if name is not None else args, "KEY=VALUE")
    if not settings and not delete:
        raise CliError("nothing to change: give KEY=VALUE or --delete KEY", 2)
    admin = Admin(bootstrap, timeout, command_config)
    alter_configs(admin, resource(admin, entity, name), settings, delete)
