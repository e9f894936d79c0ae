"""Where the official client's credentials come from, in its own order; secrets are never printed."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.kaggle.errors import NoCredentials

SETTINGS_URL = "https://www.kaggle.com/settings"
HOW_TO_SET = (
    f"create an API token at {SETTINGS_URL} (API section) and save it as ~/.kaggle/kaggle.json (chmod 600; "
    "or in $KAGGLE_CONFIG_DIR), or set KAGGLE_USERNAME and KAGGLE_KEY, or KAGGLE_API_TOKEN"
)


@dataclass(frozen=True)
class Credentials:
    """Where the client's credentials come from; the secret is never printed (repr hides it)."""

    source: str
    username: str | None
    secret: str = field(repr=False)


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder the client reads kaggle.json from (same rule as KaggleApi: KAGGLE_CONFIG_DIR, ~/.kaggle, XDG)."""
    env = os.environ if env is None else env
    if env.get("KAGGLE_CONFIG_DIR"):
        return Path(env["KAGGLE_CONFIG_DIR"])
    home = Path(os.path.expanduser("~")) / ".kaggle"
    if sys.platform.startswith("linux") and not home.exists():
        return Path(env.get("XDG_CONFIG_HOME") or Path(os.path.expanduser("~")) / ".config") / "kaggle"
    return home


def _warn_permissions(path: Path) -> None:
    mode = path.stat().st_mode
    if os.name != "nt" and mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"warning: {path} is readable by other users; run `chmod 600 {path}`", file=sys.stderr)


def find_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    """The credentials the official client will use, in its order; NoCredentials (saying how to set them) if none."""
    env = os.environ if env is None else env
    token = env.get("KAGGLE_API_TOKEN")
    if token:
        if Path(token).is_file():  # kagglesdk accepts a path to a token file too
            return Credentials(f"KAGGLE_API_TOKEN file {token}", None, Path(token).read_text().strip())
        return Credentials("KAGGLE_API_TOKEN", None, token)
    for name in ("access_token", "access_token.txt"):
        p = Path(os.path.expanduser("~")) / ".kaggle" / name
        if p.is_file() and p.read_text().strip():
            return Credentials(str(p), None, p.read_text().strip())
    path = config_dir(env) / "kaggle.json"
    file_values: dict[str, Any] = {}
    problem = ""
    if path.is_file():
        _warn_permissions(path)
        try:
            file_values = json.loads(path.read_text() or "{}")
            if not isinstance(file_values, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            file_values, problem = {}, f"{path} is not valid JSON; "
    user = env.get("KAGGLE_USERNAME") or file_values.get("username")
    key = env.get("KAGGLE_KEY") or file_values.get("key")
    if user and key:
        source = "KAGGLE_USERNAME/KAGGLE_KEY" if env.get("KAGGLE_KEY") else str(path)
        return Credentials(source, str(user), str(key))
    if path.is_file() and not problem:
        problem = f"{path} lacks a username or key; "
    raise NoCredentials(f"no Kaggle credentials: {problem}{HOW_TO_SET}")


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text
