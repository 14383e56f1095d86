"""Kafka's Java client properties (``security.protocol``, ``sasl.jaas.config``,
``ssl.truststore.location``, ...) as librdkafka settings, so that one properties file serves
Kafka's tools, ``tomyum --command-config`` and applications on :mod:`tomyum.client` and
:mod:`tomyum.streams`:

- ``sasl.jaas.config`` with ``PlainLoginModule`` or ``ScramLoginModule`` → ``sasl.username`` and
  ``sasl.password``; with ``OAuthBearerLoginModule`` and ``unsecuredLoginStringClaim_sub`` →
  librdkafka's unsecured JWT for that principal (development only, as in Kafka);
- a PEM ``ssl.truststore.location`` → ``ssl.ca.location``; a PEM ``ssl.keystore.location``
  (certificate and key in one file) → ``ssl.certificate.location`` and ``ssl.key.location``;
  a PKCS12 keystore stays ``ssl.keystore.location`` (librdkafka reads PKCS12);
- ``ssl.endpoint.identification.algorithm=`` (empty, Kafka's "off") → ``none``;
- keys librdkafka knows are kept as they are.

A key that cannot be translated (a JKS store, a Java callback class) is a
:class:`PropertiesError` naming the key and what to write instead. No I/O but reading files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["PropertiesError", "client_properties", "parse_jaas", "read_properties", "translate_properties"]


class PropertiesError(ValueError):
    """A client property librdkafka has no counterpart for: ``key`` and what to do instead."""

    def __init__(self, key: str, what: str) -> None:
        super().__init__(f"{key}: {what}")
        self.key = key


_JAAS = re.compile(r"^\s*(?P<module>[\w.$]+)\s+(?P<flag>required|requisite|sufficient|optional)\s*(?P<options>.*?);?\s*$",
                   re.DOTALL)
_JAAS_OPTION = re.compile(r'(?P<key>[\w.]+)\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s;]+))')

#: Java client keys with no librdkafka counterpart that change nothing a command does
_HARMLESS = {"ssl.truststore.type", "ssl.keystore.type", "ssl.protocol", "ssl.enabled.protocols",
             "ssl.truststore.password", "client.dns.lookup", "sasl.login.refresh.buffer.seconds",
             "sasl.login.refresh.min.period.seconds", "sasl.login.refresh.window.factor",
             "sasl.login.refresh.window.jitter", "default.api.timeout.ms"}
#: Java client keys that name Java code: nothing librdkafka can run
_JAVA_ONLY = {"sasl.login.callback.handler.class", "sasl.client.callback.handler.class", "sasl.login.class",
              "ssl.engine.factory.class", "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm",
              "security.providers", "ssl.provider"}


def read_properties(text: str) -> dict[str, str]:
    """A Java properties file's keys and values: ``#``/``!`` comments, ``=`` or ``:`` separators,
    lines continued with a trailing backslash."""
    props: dict[str, str] = {}
    logical = ""
    for raw in text.splitlines():
        line = raw.strip() if not logical else raw.lstrip()
        if not logical and (not line or line[0] in "#!"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            logical += line[:-1]
            continue
        logical += line
        key, _, value = _split(logical)
        props[key] = value
        logical = ""
    return props


def _split(line: str) -> tuple[str, str, str]:
    match = re.match(r"^(?P<key>[^=:\s]+)\s*(?:[=:]\s*|\s+|$)(?P<value>.*)$", line)
    if match is None:
        return line, "", ""
    return match["key"], "=", match["value"].strip()


def parse_jaas(value: str) -> tuple[str, dict[str, str]]:
    """``(login module, options)`` of one ``sasl.jaas.config`` entry."""
    match = _JAAS.match(value)
    if match is None:
        raise ValueError("not '<LoginModule> required key=\"value\" ...;'")
    options = {m["key"]: (m["quoted"].replace('\\"', '"') if m["quoted"] is not None else m["bare"])
               for m in _JAAS_OPTION.finditer(match["options"])}
    return match["module"].rsplit(".", 1)[-1], options


def _is_pem(path: str, declared: str | None) -> bool:
    if declared:
        return declared.upper() == "PEM"
    if path.lower().endswith((".pem", ".crt", ".cer", ".key")):
        return True
    try:
        return Path(path).read_bytes()[:4096].lstrip().startswith(b"-----BEGIN")
    except OSError:
        return False


def translate_properties(props: Mapping[str, str]) -> dict[str, str]:
    """librdkafka settings for Kafka client properties ``props``; :class:`PropertiesError` names
    the first key that cannot be translated."""
    out: dict[str, str] = {}
    for key, value in props.items():
        def fail(what: str) -> PropertiesError:
            return PropertiesError(key, what)

        if key == "sasl.jaas.config":
            out.update(_jaas(value, fail))
        elif key == "ssl.truststore.location":
            if not _is_pem(value, props.get("ssl.truststore.type")):
                raise fail("librdkafka reads no JKS or PKCS12 truststore; give a PEM file "
                           "(ssl.truststore.type=PEM) or ssl.ca.location=CA.pem")
            out["ssl.ca.location"] = value
        elif key == "ssl.keystore.location":
            if _is_pem(value, props.get("ssl.keystore.type")):
                out["ssl.certificate.location"] = out["ssl.key.location"] = value
            elif (props.get("ssl.keystore.type") or "PKCS12").upper() == "PKCS12":
                out[key] = value
            else:
                raise fail("librdkafka reads no JKS keystore; give a PEM file with the certificate and key "
                           "(ssl.keystore.type=PEM) or a PKCS12 one")
        elif key == "ssl.keystore.password":
            if not _is_pem(props.get("ssl.keystore.location", ""), props.get("ssl.keystore.type")):
                out[key] = value
        elif key == "ssl.keystore.certificate.chain":
            out["ssl.certificate.pem"] = value
        elif key == "ssl.keystore.key":
            out["ssl.key.pem"] = value
        elif key == "ssl.truststore.certificates":
            out["ssl.ca.pem"] = value
        elif key == "ssl.endpoint.identification.algorithm":
            out[key] = value or "none"
        elif key in _JAVA_ONLY:
            raise fail("names Java code, which librdkafka cannot run; remove it")
        elif key not in _HARMLESS:
            out[key] = value
    return out


def _jaas(value: str, fail: Callable[[str], PropertiesError]) -> dict[str, str]:
    try:
        module, options = parse_jaas(value)
    except ValueError as e:
        raise fail(f"{e}") from None
    if module in ("PlainLoginModule", "ScramLoginModule"):
        if "username" not in options or "password" not in options:
            raise fail(f'{module} needs username="..." password="..."')
        return {"sasl.username": options["username"], "sasl.password": options["password"]}
    if module == "OAuthBearerLoginModule":
        sub = options.get("unsecuredLoginStringClaim_sub")
        if sub is None:  # a real identity provider: librdkafka's own OIDC keys say where
            return {}
        return {"enable.sasl.oauthbearer.unsecure.jwt": "true", "sasl.oauthbearer.config": f"principal={sub}"}
    raise fail(f"{module} is not a login module librdkafka has (PlainLoginModule, ScramLoginModule, "
               "OAuthBearerLoginModule)")


def client_properties(path: str | Path) -> dict[str, str]:
    """The librdkafka settings of the Kafka client properties file at ``path`` (``OSError`` if
    it cannot be read, :class:`PropertiesError` for a key that cannot be translated)::

        Kafka(brokers=["broker:9093"], config=client_properties("client.properties"))
    """
    return translate_properties(read_properties(Path(path).read_text()))
