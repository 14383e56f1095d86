"""``tomyum users add | list | remove``: SCRAM credentials, as ``kafka-configs.sh --entity-type
users --alter --add-config 'SCRAM-SHA-256=[...]'`` manages them (AlterUserScramCredentials,
DescribeUserScramCredentials, KIP-554).

The broker stores only the salted keys; a password is never shown again, and ``list`` shows
the mechanisms and iterations of each user.
"""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, Admin, Bootstrap, CliError, CommandConfig, Timeout
from tomyum.cli.common import print_table, say

app = typer.Typer(no_args_is_help=True, help="Add, list and remove SCRAM users (SASL/SCRAM credentials).")

MIN_ITERATIONS = 4096  # Kafka's floor for SCRAM-SHA-256 and -512


class Mechanism(str, enum.Enum):
    sha256 = "SCRAM-SHA-256"
    sha512 = "SCRAM-SHA-512"


User = Annotated[str, typer.Argument(metavar="NAME", help="the user name (principal User:NAME)")]


@app.command("add")
def add(
    name: User,
    password: Annotated[str, typer.Option("--password", envvar="TOMYUM_SCRAM_PASSWORD", metavar="PASSWORD",
                                          help="the user's password (env TOMYUM_SCRAM_PASSWORD)")],
    mechanism: Annotated[Mechanism, typer.Option("--mechanism", help="the SCRAM mechanism")] = Mechanism.sha256,
    iterations: Annotated[int, typer.Option("--iterations", min=MIN_ITERATIONS, help="PBKDF2 iterations")] = 8192,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Add a SCRAM user, or change its password for MECHANISM."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    admin = Admin(bootstrap, timeout, command_config)
    admin.metadata()
    info = ScramCredentialInfo(ScramMechanism[mechanism.value.replace("-", "_")], iterations)
    futures = admin.client.alter_user_scram_credentials([UserScramCredentialUpsertion(name, info, password.encode())],
                                                         request_timeout=timeout)
    admin.wait(futures[name], f"cannot add user {name!r}")
    say(f"user {name!r} can authenticate with {mechanism.value} ({iterations} iterations)")


@app.command("list")
def list_users(
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """List SCRAM users: their mechanisms and iterations."""
    admin = Admin(bootstrap, timeout, command_config)
    admin.metadata()
    users = admin.wait(admin.client.describe_user_scram_credentials(request_timeout=timeout), "cannot list users")
    print_table(["USER", "MECHANISM", "ITERATIONS"],
                sorted((name, info.mechanism.name.replace("_", "-"), info.iterations)
                       for name, description in users.items() for info in description.scram_credential_infos),
                empty="no SCRAM users")


@app.command("remove")
def remove(
    name: User,
    mechanism: Annotated[Mechanism | None, typer.Option(
        "--mechanism", help="only this mechanism's credential (default: all the user has)", show_default=False)] = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Remove a SCRAM user's credentials."""
    from confluent_kafka.admin import ScramMechanism, UserScramCredentialDeletion

    admin = Admin(bootstrap, timeout, command_config)
    admin.metadata()
    if mechanism is None:
        found = admin.wait(admin.client.describe_user_scram_credentials([name], request_timeout=timeout)[name],
                           f"no SCRAM user {name!r} (see 'tomyum users list')")
        mechanisms = [info.mechanism for info in found.scram_credential_infos]
    else:
        mechanisms = [ScramMechanism[mechanism.value.replace("-", "_")]]
    if not mechanisms:
        raise CliError(f"no SCRAM user {name!r} (see 'tomyum users list')")
    for m in mechanisms:
        futures = admin.client.alter_user_scram_credentials([UserScramCredentialDeletion(name, m)],
                                                             request_timeout=timeout)
        admin.wait(futures[name], f"cannot remove {m.name.replace('_', '-')} of user {name!r}")
    say(f"removed user {name!r} ({', '.join(m.name.replace('_', '-') for m in mechanisms)})")
