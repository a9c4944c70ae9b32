"""One config file for `neurtmp serve` and `neurtmp ingest` (TOML).

Each command reads its own table, ``[serve]`` or ``[ingest]``; a key is a command-line
option's name without the leading dashes (``flush-interval`` or ``flush_interval``), its
value what the option takes: a number or a string, true for a switch (false: off), a
list for a repeatable option, a list of lists for a repeatable option of several values
(``app-publish-secret = [["live", "s3cret"]]``). The table becomes command-line options put
before the ones typed, so what is typed wins, and the command's own parser checks every
key and value (an unknown key or a bad value is one line naming the key, and exit status 2).

``serve`` also takes a table per application, ``[serve.apps.NAME]``, like nginx-rtmp's
``application`` blocks: its token secrets, IP rules, hooks, whether it is recorded, and
its relays (names there are the app's own). With app tables and no ``app`` key, only the
apps that have a table are served.

    [serve]
    listen = "0.0.0.0:1935"
    http = "127.0.0.1:8080"

    [serve.apps.live]
    publish-secret = "s3cret"
    allow-publish = ["10.0.0.0/8"]
    deny-publish = ["all"]
    on-play = "http://127.0.0.1:9000/play"
    record = true
    push = ["cam=rtmp://backup.example/live/cam"]
"""

from __future__ import annotations

from typing import Any

import tomllib

from neurtmp.errors import ConfigError

__all__ = ["APP_KEYS", "Setting", "options_from_file", "settings_from_file"]

#: The keys of an app table (``[serve.apps.NAME]``).
APP_KEYS = ("publish-secret", "play-secret", "allow-publish", "deny-publish", "allow-play", "deny-play",
            "on-connect", "on-publish", "on-play", "on-publish-done", "on-play-done", "on-record-done",
            "record", "push", "pull")

#: The table that holds the app tables, in the commands that have them.
_APPS_KEY = {"serve": "apps"}

#: One key of the file: where it is (``flush-interval``, ``apps.live.on-play``) and the
#: command-line words it stands for.
Setting = tuple[str, list[str]]


def options_from_file(path: str, section: str) -> list[str]:
    """The command-line options that `path`'s `[section]` table stands for.

    Raises:
        ConfigError: the file cannot be read or parsed, or a value has no option form.
    """
    return [word for _, words in settings_from_file(path, section) for word in words]


def settings_from_file(path: str, section: str) -> list[Setting]:
    """`path`'s `[section]` table, key by key: each key's place and the command-line words
    it stands for (checked one by one by the command's parser, to name the key at fault).

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
    where = f"config file {path}: [{section}]"
    settings: list[Setting] = []
    apps_key = _APPS_KEY.get(section)
    for key, value in table.items():
        if key == "config":
            raise ConfigError(f"{where} cannot name another config file")
        if key == apps_key:
            settings.extend(_app_settings(where, key, value, served="app" not in table))
            continue
        settings.append((key, _words(f"{where} {key}", "--" + str(key).replace("_", "-"), value)))
    return settings


def _app_settings(where: str, key: str, apps: Any, served: bool) -> list[Setting]:
    """The settings of the ``[serve.apps.NAME]`` tables (`served`: each NAME becomes an
    ``--app``, as no ``app`` key lists the served apps)."""
    if not isinstance(apps, dict) or not all(isinstance(table, dict) for table in apps.values()):
        raise ConfigError(f"{where} {key} must hold a table per application ([serve.apps.NAME])")
    settings: list[Setting] = []
    for app, table in apps.items():
        if not app or "/" in app:
            raise ConfigError(f"{where} {key}: {app!r} is not an application name")
        if served:
            settings.append((f"{key}.{app}", [f"--app={app}"]))
        for name, value in table.items():
            place = f"{key}.{app}.{name}"
            setting = str(name).replace("_", "-")
            if setting not in APP_KEYS:
                raise ConfigError(f"{where} {place}: unknown key (an app table takes {', '.join(APP_KEYS)})")
            items = value if isinstance(value, list) else [value]
            if setting == "record" and not isinstance(value, bool):
                raise ConfigError(f"{where} {place} must be true or false, not {value!r}")
            if setting != "record" and not all(isinstance(item, str) for item in items):
                raise ConfigError(f"{where} {place} must be a string or a list of strings, not {value!r}")
            settings.append((place, [word for item in items for word in _app_words(app, setting, item)]))
    return settings


def _app_words(app: str, setting: str, value: str | bool) -> list[str]:
    """The command-line words of one value of an app table's key."""
    if setting == "record":
        return ["--record-app", app] if value is True else []
    text = str(value)
    if setting.endswith("-secret"):
        return [f"--app-{setting}", app, text]
    if setting.startswith(("allow-", "deny-")):
        return ["--app-rule", app, setting, text]
    if setting.startswith("on-"):
        return ["--app-hook", app, setting.removeprefix("on-"), text]
    if setting == "push":  # NAME=URL
        return [f"--push={app}/{text}"]
    url, _, name = text.rpartition("=")  # pull: URL=NAME
    return [f"--pull={url}={app}/{name}" if url else f"--pull={text}"]


def _words(place: str, flag: str, value: Any) -> list[str]:
    if value is True:
        return [flag]
    if value is False:
        return []
    if isinstance(value, list):
        if value and all(isinstance(item, list) for item in value):  # an option of several values, repeated
            return [token for item in value for token in (flag, *map(str, item))]
        return [token for item in value for token in _words(place, flag, item)]
    if isinstance(value, (int, float, str)):
        return [f"{flag}={value}"]
    raise ConfigError(f"{place} must be a number, a string, true/false or a list, not {value!r}")
