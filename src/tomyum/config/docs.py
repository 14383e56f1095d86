"""``docs/configuration.md``, generated from the config definitions.

Regenerate with ``python -m tomyum.config`` (writes ``docs/configuration.md``; give another
path as the argument to write elsewhere). ``tests/unit/test_config_docs.py`` fails while the
committed file differs from :func:`render`, so the docs cannot drift from the tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tomyum.config.broker_defs import BROKER_CONFIGS
from tomyum.config.definition import ConfigDef, format_value
from tomyum.config.topic_defs import TOPIC_CONFIGS

COMMAND = "python -m tomyum.config"

_HEADER = f"""# Configuration

<!-- Generated from src/tomyum/config/ by `{COMMAND}`; do not edit by hand. -->

Every key tomyum knows, with Kafka's names, types and defaults. Broker keys come from a
`server.properties`-style file (`--config`), `TOMYUM_*` environment variables
(`TOMYUM_LOG_RETENTION_MS` is `log.retention.ms`) and `--set key=value`; a dynamic key can also
change at run time with AlterConfigs / IncrementalAlterConfigs (`tomyum configs set broker ...`),
for this broker or cluster-wide. Topic keys are set per topic (at creation or with
`tomyum configs set topic ...`); a topic without its own value takes the first of its broker
synonyms that is set, converted to the topic key's unit, else the default shown.

An unknown key is an error that names it. A key whose *Implemented* column says *ignored* is one Kafka has and tomyum
accepts with a warning and does not apply. Keys named `internal.*` are not listed by
DescribeConfigs.
"""


def _code(text: str | None) -> str:
    if text is None:
        return "null"
    return f"`{text}`" if text else '`""`'


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _synonyms(d: ConfigDef) -> str:
    return ", ".join(f"`{s.name}`" + (f" (×{s.factor})" if s.factor != 1 else "") for s in d.synonyms)


def _broker_synonyms(name: str, topic: Mapping[str, ConfigDef]) -> str:
    """The topic keys ``name`` is a default of, and the broker keys of the same chain."""
    out = []
    for d in topic.values():
        names = [s.name for s in d.synonyms]
        if name in names:
            out += [f"`{n}`" for n in names if n != name and f"`{n}`" not in out]
            out.append(f"default of topic `{d.name}`")
    return ", ".join(out)


def _row(d: ConfigDef, dynamic: str, synonyms: str) -> str:
    cells = [f"`{d.name}`", d.type.name.lower(), _code(format_value(d.default)),
             d.validator.describe if d.validator else "", dynamic,
             "yes" if d.implemented else "ignored", synonyms, d.doc]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(rows: Iterable[str]) -> list[str]:
    columns = ["Key", "Type", "Default", "Valid values", "Dynamic", "Implemented", "Synonyms", "Description"]
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *rows]


def render(broker: Mapping[str, ConfigDef] = BROKER_CONFIGS, topic: Mapping[str, ConfigDef] = TOPIC_CONFIGS) -> str:
    """The whole of ``docs/configuration.md``: the broker keys, then the topic keys, sorted by name."""
    lines = [_HEADER, "## Broker configs", "",
             "Synonyms: the topic keys a broker key is the default of, and the broker keys that stand in "
             "for one another (the first set wins).", ""]
    lines += _table(_row(d, "yes" if d.dynamic else "read-only", _broker_synonyms(d.name, topic))
                    for d in sorted(broker.values(), key=lambda d: d.name))
    lines += ["", "## Topic configs", "",
              "Synonyms: the broker keys that supply a topic's default, the one that wins first; "
              "(×N) converts their unit to the topic key's.", ""]
    lines += _table(_row(d, "per topic", _synonyms(d)) for d in sorted(topic.values(), key=lambda d: d.name))
    return "\n".join(lines) + "\n"
