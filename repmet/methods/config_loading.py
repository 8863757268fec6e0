"""Reading an experiment config: the shared sections (:mod:`repmet.config`) and the section of the
config's method, which the method registry knows. Here rather than in ``repmet.config`` so the
schema module imports no method (config <- methods, never the other way)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from repmet.config import ExperimentConfig, build_section, read_config_file, shown
from repmet.errors import UserError
from repmet.methods.registry import get_method, method_sections


def load_config(path: str | Path, overrides: typing.Sequence[str] = ()) -> ExperimentConfig:
    """Read a YAML experiment and apply ``key.sub=value`` overrides."""
    return config_from_dict(read_config_file(path, overrides), source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> ExperimentConfig:
    """Parse and check ``raw``. Sections owned by methods come from the method registry; the
    chosen method's section gets its defaults when absent."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: the top level must be a mapping, got {shown(raw)}")
    owned = method_sections()
    common = {key: value for key, value in raw.items() if key not in owned}
    config = build_section(ExperimentConfig, common, prefix="", source=source)
    method = get_method(config.method, where=f"{source}: key 'method'")
    for name, section_class in owned.items():
        if name in raw:
            section = build_section(section_class, raw[name], prefix=f"{name}.", source=source)  # checked either way
            if name == method.section:
                config.sections[name] = section
        elif name == method.section:
            config.sections[name] = section_class()
    # Sections of other methods are checked but not kept: checkpoints of version 1 carried them all.
    method.check_config(config, source)
    return config
