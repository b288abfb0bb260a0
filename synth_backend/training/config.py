"""Training configuration: packaged presets, a user YAML file and ``key=value`` overrides.

Precedence: preset (``synth_backend/configs/<method>.yaml``, section ``tiny``, ``small`` or ``full``) <
``--config FILE.yaml`` < ``--set a.b=value``. Every key must exist in the preset: a typo fails
at once with a message naming the key, instead of silently training with the default.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from core.errors import InputError

METHODS = ("autoencoder", "difftumor", "tumorgen")
PRESETS = ("tiny", "small", "full")


class ConfigError(InputError):
    """A training configuration that cannot be used as given: '<key or file>: <problem>; <fix>'."""


def load_preset(method: str, preset: str = "tiny") -> dict[str, Any]:
    """The packaged preset ``preset`` of ``method`` as a fresh nested dict."""
    if method not in METHODS:
        raise ConfigError(
            "method",
            f"must be one of {METHODS}, got {method!r}",
            f"pass one of {', '.join(METHODS)}",
        )
    if preset not in PRESETS:
        raise ConfigError(
            "preset",
            f"must be one of {PRESETS}, got {preset!r}",
            "use --preset tiny, small or full",
        )
    text = resources.files("synth_backend.configs").joinpath(f"{method}.yaml").read_text()
    return copy.deepcopy(yaml.safe_load(text)[preset])


def merge(base: dict[str, Any], override: dict[str, Any], *, where: str) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``; unknown keys raise :class:`ConfigError`."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in out:
            raise ConfigError(where, f"unknown key {key!r}", f"valid keys are {sorted(out)}")
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(
                    where,
                    f"key {key!r} must be a mapping, got {value!r}",
                    f"give it as a mapping of {sorted(out[key])}",
                )
            out[key] = merge(out[key], value, where=f"{where}.{key}")
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``"train.lr=1e-4"`` -> ``{"train": {"lr": 0.0001}}`` (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(
            "--set",
            f"value must look like key.sub=value, got {text!r}",
            "pass e.g. --set train.lr=1e-4",
        )
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    node: dict[str, Any] = {}
    root = node
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return root


def build_config(
    method: str,
    preset: str = "tiny",
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Resolve the full configuration of one training run (see the module docstring)."""
    cfg = load_preset(method, preset)
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(path, "config file does not exist", "check the path")
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(path, f"is not valid YAML ({exc})", "fix the syntax") from exc
        if not isinstance(user, dict):
            raise ConfigError(
                path,
                "must hold a mapping of config keys",
                f"see synth_backend/configs/{method}.yaml for the layout",
            )
        cfg = merge(cfg, user, where=str(path))
    for text in overrides or []:
        cfg = merge(cfg, parse_override(text), where=f"--set {text}")
    cfg["method"] = method
    cfg["preset"] = preset
    return cfg
