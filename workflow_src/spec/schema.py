"""config.yaml checked against schemas/config.schema.yaml, with a one-line error per problem.

Snakemake's own `validate` fills in the schema's defaults and raises a WorkflowError whose text
holds the jsonschema error, and that error prints the whole offending sub-schema (over a
thousand lines for a misspelled top-level key) before the useful line. `validate_config` does
the same validation and raises ConfigError with only what to fix: the key's dotted path, what is
wrong with its value, and the known keys where a key is unknown.

No torch here: the Snakefile imports this before anything else.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

MAX_VALUE_CHARS = 200  # a value echoed in an error (a whole preset, say) is cut to this


class ConfigError(ValueError):
    """config.yaml (or an overlay, or --config) breaks the schema; the message names the key."""


def key_path(error) -> str:
    """The dotted key of a jsonschema error ("(top level)" for the config itself)."""
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def shorten(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    return text if len(text) <= limit else f"{text[: limit - 5]} ...)"


def describe(error) -> str:
    """One line: the key, what is wrong, and the choices or known keys where there are."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        parent = key_path(error)
        where = "" if parent == "(top level)" else f"{parent}."
        return f"unknown config key {', '.join(repr(where + str(k)) for k in unknown)}" + (
            f" (known keys here: {', '.join(known)})" if known else ""
        )
    return f"config key '{key_path(error)}': {shorten(error.message)}"


@functools.cache
def validator(schema: str):
    """A Draft 2020-12 validator of the schema file that also fills in defaults, built once.

    As Snakemake's `validate` does (a missing key gets its `default`), with two differences: a
    default is copied, never shared between configs, and a value that is not an object gets
    no defaults (it gets the type error instead of an AttributeError).
    """
    import jsonschema

    document = yaml.safe_load(Path(schema).read_text(encoding="utf-8"))
    base = jsonschema.validators.validator_for(document)
    check_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, property_schema in properties.items():
                if "default" in property_schema:
                    instance.setdefault(name, copy.deepcopy(property_schema["default"]))
        yield from check_properties(validator, properties, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(document)


def validate_config(config: dict, schema: str | Path) -> dict:
    """Validate `config` in place, filling in defaults.

    Raises ConfigError naming the key and the problem; the remedy line points at the schema.
    """
    import jsonschema

    errors = list(validator(str(schema)).iter_errors(config))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        raise ConfigError(
            f"{describe(error)}. Every key, its default and its bounds are documented in {schema}."
        )
    return config
