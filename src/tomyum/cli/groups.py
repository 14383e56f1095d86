"""``tomyum groups list | describe | reset-offsets | delete``, as ``kafka-consumer-groups.sh``
does them (ListGroups, DescribeGroups/ConsumerGroupDescribe, OffsetFetch, ListOffsets,
OffsetCommit, DeleteGroups).

Offsets are reset only in a group without members, as Kafka's tool requires: a live member
would overwrite them with its next commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, CommandConfig, Admin, Bootstrap, CliError, Timeout, check_partitions
from tomyum.cli.common import print_table, say
from tomyum.cli.parsing import POSITION_HELP, parse_position, parse_topic_partitions

if TYPE_CHECKING:
    from confluent_kafka.admin import ConsumerGroupDescription, MemberDescription

app = typer.Typer(no_args_is_help=True, help="List, describe, reset and delete consumer groups.")

Groups = Annotated[list[str], typer.Argument(metavar="GROUP...", show_default=False)]
Key = tuple[str, int]


@app.command("list")
def list_groups(bootstrap: Bootstrap = DEFAULT_BOOTSTRAP, timeout: Timeout = DEFAULT_TIMEOUT,
        command_config: CommandConfig = None) -> None:
    """List consumer groups with their state and protocol (classic or consumer)."""
    admin = Admin(bootstrap, timeout, command_config)
    admin.metadata()
    listing = admin.wait(admin.client.list_consumer_groups(request_timeout=timeout), "cannot list groups")
    rows = [(g.group_id, _name(g.state), _name(g.type)) for g in sorted(listing.valid, key=lambda g: g.group_id)]
    print_table(["GROUP", "STATE", "TYPE"], rows, empty="no consumer groups")


@app.command("describe")
def describe(groups: Groups, bootstrap: Bootstrap = DEFAULT_BOOTSTRAP, timeout: Timeout = DEFAULT_TIMEOUT,
        command_config: CommandConfig = None) -> None:
    """Members and their assignments, committed offsets and lag per partition."""
    admin = Admin(bootstrap, timeout, command_config)
    admin.metadata()
    for i, group in enumerate(groups):
        description = _describe(admin, group)
        committed = _committed(admin, group)
        if _name(description.state) == "dead" and not committed:
            raise CliError(f"unknown group {group!r}")
        owner = {(tp.topic, tp.partition): m.member_id for m in description.members
                 for tp in (m.assignment.topic_partitions if m.assignment else [])}
        keys = sorted(set(committed) | set(owner))
        high = {k: marks[1] for k, marks in admin.watermarks(keys).items()}
        if i:
            say("")
        say(f"group {group}: {_name(description.state)}, {_name(description.type)}, "
            f"{len(description.members)} member{'s' if len(description.members) != 1 else ''}"
            + (f", assignor {description.partition_assignor}" if description.partition_assignor else ""))
        print_table(["TOPIC", "PARTITION", "COMMITTED", "HIGH", "LAG", "MEMBER"],
                    [(t, p, committed.get((t, p)), high.get((t, p)), _lag(committed.get((t, p)), high.get((t, p))),
                      owner.get((t, p))) for t, p in keys], empty="no committed offsets and no assignments")
        if description.members:
            say("")
            print_table(["MEMBER", "INSTANCE", "CLIENT", "HOST", "ASSIGNMENT"],
                        [(m.member_id, m.group_instance_id, m.client_id, m.host, _assignment(m))
                         for m in description.members])


@app.command("reset-offsets")
def reset_offsets(
    group: Annotated[str, typer.Argument(show_default=False)],
    to: Annotated[str, typer.Option("--to", metavar="POSITION", help=POSITION_HELP, show_default=False)],
    topics: Annotated[list[str], typer.Option("--topic", "-t", metavar="TOPIC[:P,P...]",
                                              help="reset this topic, or these partitions of it (repeatable)")]
    = [],  # noqa: B006
    all_topics: Annotated[bool, typer.Option("--all-topics", help="every topic the group has offsets for")] = False,
    execute: Annotated[bool, typer.Option("--execute", help="change the offsets (without it: only show them, "
                                                           "as Kafka's tool does)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only show the new offsets: the default, "
                                                           "kept for scripts that say it")] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Show, and with --execute make, a move of a group's committed offsets to the earliest, the latest,
    a time or an offset."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    position = parse_position(to, "--to")
    if bool(topics) == all_topics:
        raise CliError("name the partitions: --topic TOPIC[:P,P...] (repeatable) or --all-topics", 2)
    specs = [parse_topic_partitions(t, "--topic") for t in topics]
    admin = Admin(bootstrap, timeout, command_config)
    admin.metadata()
    description = _describe(admin, group)
    if description.members:
        raise CliError(f"group {group!r} has {len(description.members)} active members (state "
                       f"{_name(description.state)}): stop them before resetting its offsets")
    committed = _committed(admin, group)
    keys = sorted(committed) if all_topics else _partitions(admin, specs)
    marks = admin.watermarks(keys)
    by_time = admin.list_offsets(keys, OffsetSpec.for_timestamp(position.value)) \
        if position.kind == "timestamp" else {}
    target = {k: position.resolve(*marks[k], by_time.get(k)) for k in keys}
    print_table(["TOPIC", "PARTITION", "COMMITTED", "NEW"],
                [(t, p, committed.get((t, p)), target[(t, p)]) for t, p in keys])
    if dry_run and execute:
        raise CliError("--dry-run and --execute: give one", 2)
    if not execute:
        say("nothing changed: this is a preview (--execute changes the offsets)")
        return
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, o) for (t, p), o in target.items()])
    admin.wait(admin.client.alter_consumer_group_offsets([request], request_timeout=timeout)[group],
               f"cannot reset offsets of group {group!r}")
    say(f"reset offsets of group {group} on {len(keys)} partition{'s' if len(keys) != 1 else ''}")


@app.command("delete")
def delete(groups: Groups, bootstrap: Bootstrap = DEFAULT_BOOTSTRAP, timeout: Timeout = DEFAULT_TIMEOUT,
        command_config: CommandConfig = None) -> None:
    """Delete groups without members, and their committed offsets."""
    admin = Admin(bootstrap, timeout, command_config)
    admin.metadata()
    futures = admin.client.delete_consumer_groups(groups, request_timeout=timeout)
    for group in groups:
        admin.wait(futures[group], f"cannot delete group {group!r}")
        say(f"deleted group {group}")


def _describe(admin: Admin, group: str) -> ConsumerGroupDescription:
    future = admin.client.describe_consumer_groups([group], request_timeout=admin.timeout)[group]
    return admin.wait(future, f"cannot describe group {group!r}")


def _committed(admin: Admin, group: str) -> dict[Key, int]:
    from confluent_kafka import ConsumerGroupTopicPartitions

    future = admin.client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                      request_timeout=admin.timeout)[group]
    result = admin.wait(future, f"cannot read committed offsets of group {group!r}")
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def _partitions(admin: Admin, specs: list[tuple[str, list[int] | None]]) -> list[Key]:
    keys: list[Key] = []
    for topic, wanted in specs:
        existing = sorted(admin.topic(topic).partitions)
        check_partitions(topic, existing, wanted or [])
        keys += [(topic, p) for p in (wanted or existing)]
    return sorted(set(keys))


def _assignment(member: MemberDescription) -> str:
    by_topic: dict[str, list[int]] = {}
    for tp in member.assignment.topic_partitions if member.assignment else []:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return " ".join(f"{t}:{','.join(map(str, sorted(ps)))}" for t, ps in sorted(by_topic.items())) or "-"


def _lag(committed: int | None, high: int | None) -> int | None:
    return None if committed is None or high is None else max(high - committed, 0)


def _name(value: object) -> str:
    """``ConsumerGroupState.STABLE`` → ``stable``."""
    return getattr(value, "name", str(value)).lower()
