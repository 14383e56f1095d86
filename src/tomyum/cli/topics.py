"""``tomyum topics list | describe | create | delete | alter``, as ``kafka-topics.sh`` does them
(Metadata, ListOffsets, DescribeConfigs, CreateTopics, DeleteTopics, CreatePartitions,
IncrementalAlterConfigs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, CommandConfig, Admin, Bootstrap, CliError, Timeout, print_table, say
from tomyum.cli.common import TopicArgument, TopicOption, console, one_topic
from tomyum.cli.configs import ShowAll, alter_configs, show_configs
from tomyum.cli.parsing import parse_pairs
from tomyum.cli.suggest import did_you_mean

if TYPE_CHECKING:
    from confluent_kafka.admin import TopicMetadata

app = typer.Typer(no_args_is_help=True, help="List, describe, create, delete and alter topics.")

Topics = Annotated[list[str], typer.Argument(metavar="TOPIC...", show_default=False)]
Configs = Annotated[list[str], typer.Option("--config", "-c", metavar="KEY=VALUE",
                                            help="a topic config such as retention.ms=86400000 (repeatable)")]


@app.command("list")
def list_topics(
    internal: Annotated[bool, typer.Option("--internal", help="include internal topics (__consumer_offsets, ...)")]
    = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """List topics with their partition counts."""
    admin = Admin(bootstrap, timeout, command_config)
    topics = admin.metadata().topics
    rows = [(name, len(t.partitions), _replication(t)) for name, t in sorted(topics.items())
            if internal or not name.startswith("__")]
    print_table(["TOPIC", "PARTITIONS", "REPLICATION"], rows, empty="no topics")


@app.command("describe")
def describe(
    topics: Annotated[list[str] | None, typer.Argument(metavar="[TOPIC...]", show_default=False,
                                                       help="default: every topic but the internal ones")] = None,
    topic_options: Annotated[list[str], typer.Option("--topic", "-t", metavar="TOPIC",
                                                     help="a topic, as Kafka's tools name it (repeatable)")]
    = [],  # noqa: B006
    show_all: ShowAll = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Partitions (leader, replicas, in-sync replicas, low and high watermarks) and configs of topics."""
    from confluent_kafka.admin import ConfigResource, ResourceType

    admin = Admin(bootstrap, timeout, command_config)
    names = [*(topics or []), *topic_options] or \
        sorted(name for name in admin.metadata().topics if not name.startswith("__"))
    if not names:
        console(stderr=True).print("no topics", markup=False)
    for i, name in enumerate(names):
        topic = admin.topic(name)
        partitions = sorted(topic.partitions.values(), key=lambda p: p.id)
        marks = admin.watermarks((name, p.id) for p in partitions)
        if i:
            say("")
        say(f"topic {name}: {len(partitions)} partitions, replication {_replication(topic)}")
        print_table(["PARTITION", "LEADER", "REPLICAS", "ISR", "LOW", "HIGH"],
                    [(p.id, p.leader, _ids(p.replicas), _ids(p.isrs), *marks[(name, p.id)]) for p in partitions])
        say("")
        show_configs(admin, ConfigResource(ResourceType.TOPIC, name), show_all)


@app.command("create")
def create(
    topic_argument: TopicArgument = None,
    topic_option: TopicOption = None,
    partitions: Annotated[int | None, typer.Option("--partitions", "-p", min=1,
                                                  help="default: the broker's num.partitions")] = None,
    replication: Annotated[int | None, typer.Option("--replication-factor", "-r", min=1,
                                                   help="default: the broker's default.replication.factor")] = None,
    configs: Configs = [],  # noqa: B006
    if_not_exists: Annotated[bool, typer.Option("--if-not-exists", help="succeed if the topic exists")] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Create a topic."""
    from confluent_kafka.admin import NewTopic

    topic = one_topic(topic_argument, topic_option)
    settings = parse_pairs(configs, "--config")
    admin = Admin(bootstrap, timeout, command_config)
    if topic in admin.metadata().topics and if_not_exists:
        say(f"topic {topic} already exists")
        return
    new = NewTopic(topic, partitions or -1, replication or -1, config=settings)
    admin.wait(admin.client.create_topics([new], request_timeout=timeout)[topic], f"cannot create topic {topic!r}")
    count = partitions or len(admin.topic(topic).partitions)
    say(f"created topic {topic} with {count} partition{'s' if count != 1 else ''}")


@app.command("delete")
def delete(
    topics: Topics,
    if_exists: Annotated[bool, typer.Option("--if-exists", help="succeed for topics that do not exist")] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Delete topics and all their records."""
    admin = Admin(bootstrap, timeout, command_config)
    existing = admin.metadata().topics
    missing = [t for t in topics if t not in existing]
    if missing and not if_exists:
        hint = did_you_mean(missing[0], existing) if len(missing) == 1 else ""
        raise CliError(f"unknown topic{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}{hint}")
    wanted = [t for t in topics if t in existing]
    if not wanted:
        return
    futures = admin.client.delete_topics(wanted, request_timeout=timeout)
    for name in wanted:
        admin.wait(futures[name], f"cannot delete topic {name!r}")
        say(f"deleted topic {name}")


@app.command("alter")
def alter(
    topic: Annotated[str, typer.Argument(show_default=False)],
    partitions: Annotated[int | None, typer.Option("--partitions", "-p", min=1,
                                                  help="raise the partition count to this")] = None,
    configs: Configs = [],  # noqa: B006
    delete_configs: Annotated[list[str], typer.Option("--delete-config", metavar="KEY",
                                                      help="return a config to its default (repeatable)")]
    = [],  # noqa: B006
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Add partitions to a topic or change its configs."""
    from confluent_kafka.admin import ConfigResource, NewPartitions, ResourceType

    settings = parse_pairs(configs, "--config")
    if partitions is None and not settings and not delete_configs:
        raise CliError("nothing to alter: give --partitions, --config or --delete-config", 2)
    admin = Admin(bootstrap, timeout, command_config)
    current = len(admin.topic(topic).partitions)
    if partitions is not None:
        if partitions <= current:
            raise CliError(f"topic {topic!r} has {current} partitions; --partitions can only raise that")
        admin.wait(admin.client.create_partitions([NewPartitions(topic, partitions)], request_timeout=timeout)[topic],
                   f"cannot add partitions to {topic!r}")
        say(f"topic {topic} now has {partitions} partitions (was {current})")
    if settings or delete_configs:
        alter_configs(admin, ConfigResource(ResourceType.TOPIC, topic), settings, delete_configs)


def _replication(topic: TopicMetadata) -> int:
    return min((len(p.replicas) for p in topic.partitions.values()), default=0)


def _ids(nodes: list[int]) -> str:
    return ",".join(map(str, nodes))
