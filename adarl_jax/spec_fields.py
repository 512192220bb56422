"""Frozen settings records (the model's, the front end's) read from a config section."""

from __future__ import annotations

import dataclasses


def cast_fields(record_type, section, names) -> dict:
    """{name: section[name]} for the fields `names` of the dataclass `record_type`, each cast
    to the type of its default (bool, int, float, str): the settings a config section holds
    under the record's own field names."""
    defaults = {field.name: field.default for field in dataclasses.fields(record_type)}
    return {name: type(defaults[name])(section[name]) for name in names}
