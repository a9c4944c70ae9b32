"""One config file for `neurtmp serve` and `neurtmp ingest` (TOML).

Each command reads its own table, ``[serve]`` or ``[ingest]``; a key is a command-line
option's name without the leading dashes (``flush-interval`` or ``flush_interval``), its
value what the option takes: a number or a string, true for a switch (false: off), a
list for a repeatable option, a list of lists for a repeatable option of several values
(``app-publish-secret = [["live", "s3cret"]]``). The table becomes command-line options put before the
ones typed, so what is typed wins, and the command's own parser checks every key and
value (an unknown key or a bad value is one line naming it, and exit status 2).

    [serve]
    listen = "0.0.0.0:1935"
    http = "127.0.0.1:8080"
    app = ["live", "studio"]
    flush-interval = 20
"""

from __future__ import annotations

from typing import Any

import tomllib

from neurtmp.errors import ConfigError

__all__ = ["options_from_file"]


def options_from_file(path: str, section: str) -> list[str]:
    """The command-line options that `path`'s `[section]` table stands for.

    Raises:
        ConfigError: the file cannot be read or parsed, or a value has no option form.
    """
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    table = document.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [{section}] must be a table")
    options: list[str] = []
    for key, value in table.items():
        flag = "--" + str(key).replace("_", "-")
        if key == "config":
            raise ConfigError(f"config file {path}: [{section}] cannot name another config file")
        options.extend(_tokens(path, section, key, flag, value))
    return options


def _tokens(path: str, section: str, key: str, flag: str, value: Any) -> list[str]:
    if value is True:
        return [flag]
    if value is False:
        return []
    if isinstance(value, list):
        if value and all(isinstance(item, list) for item in value):  # an option of several values, repeated
            return [token for item in value for token in (flag, *map(str, item))]
        return [token for item in value for token in _tokens(path, section, key, flag, item)]
    if isinstance(value, (int, float, str)):
        return [f"{flag}={value}"]
    raise ConfigError(f"config file {path}: [{section}] {key} must be a number, a string, true/false or a list, "
                      f"not {value!r}")
