"""Command-line options declared once, as dataclass fields.

A field is an option when its metadata holds a `help`:

    seed: int = dataclasses.field(default=0, metadata={
        "help": "seed of the search algorithm"})
    seed: int = option(0, help="seed of the search algorithm")  # the same

`add_options` adds `--seed` to a parser (its type from the annotation, its
default from the field, the default shown in the help), `values` reads the
parsed value back by field name, and `argv` renders values as the
arguments that give them again. So the parser, a spec's JSON form (its
`fields()`) and a rendered command line follow the one declaration.

Optional metadata:

    flag           the flag, when not `--` and the name with dashes
    metavar        as argparse takes it
    choices        as argparse takes them (a `Literal` annotation gives them)
    default_help   the command line's default in words, where it is not the
                   field's own value but worked out by the command (the
                   parser's default is then None: "not given")

An annotation `bool` is a switch, `tuple[...]` a repeatable option (its
items as strings), `int`, `float`, `str` or a `Literal` (or any of them
`| None`) a value of that type. A `group` field holds the options of
another dataclass, by field name, in its place among the options.
Standard library only: `--help` and script rendering stay light.
"""

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal


def option(default=dataclasses.MISSING, **metadata) -> dataclasses.Field:
    """A dataclass field that is an option: `help=`, and the optional
    metadata above as keywords."""
    return dataclasses.field(default=default, metadata=metadata)


def group(cls, *, exclude: Iterable[str] = (), unset: bool = False,
          required: bool = True) -> dataclasses.Field:
    """A dataclass field holding the options of dataclass `cls` (a dict by
    field name); the keywords are `add_options`'."""
    return dataclasses.field(default_factory=dict, metadata={"group": (
        cls, {"exclude": tuple(exclude), "unset": unset,
              "required": required})})


def group_class(cls, name: str) -> type:
    """The dataclass whose options the `group` field `name` of `cls`
    holds."""
    (field,) = [f for f in dataclasses.fields(cls) if f.name == name]
    return field.metadata["group"][0]


def option_fields(cls, *, exclude: Iterable[str] = ()
                  ) -> list[dataclasses.Field]:
    """The fields of dataclass `cls` that are options, in order."""
    return [f for f in dataclasses.fields(cls)
            if "help" in f.metadata and f.name not in exclude]


def flag(field: dataclasses.Field) -> str:
    return field.metadata.get("flag", "--" + field.name.replace("_", "-"))


def _dest(field: dataclasses.Field) -> str:
    return flag(field).lstrip("-").replace("-", "_")


def _kind(cls, field: dataclasses.Field):
    """`bool`, `tuple`, a Literal or the value type of an option."""
    hint = typing.get_type_hints(cls)[field.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return tuple
    return hint


def _has_default(field: dataclasses.Field) -> bool:
    return (field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING)


def parser_default(field: dataclasses.Field, *, unset: bool = False):
    """What the command line holds when the option is not given."""
    if (unset or "default_help" in field.metadata
            or not _has_default(field)):
        return None
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _help(field: dataclasses.Field) -> str:
    shown = field.metadata.get("default_help")
    default = field.default
    if shown is None and not (default is dataclasses.MISSING
                              or default is None or default is False
                              or default == ()):
        shown = default
    help_text = field.metadata["help"]
    if shown is None:
        return help_text
    return f"{help_text} (default: {str(shown).replace('%', '%%')})"


def add_options(parser, cls, *, exclude: Iterable[str] = (),
                unset: bool = False, required: bool = True) -> None:
    """Adds the options of dataclass `cls` to an argparse parser.

    Args:
        parser: an `argparse.ArgumentParser` (or argument group).
        cls: the dataclass.
        exclude: names of option fields to leave out.
        unset: every option's parser default is None (not given), as for
            options that keep their saved value on resume; the help still
            shows the field's default.
        required: an option without a default is required (otherwise it
            is None when not given, for the command to check).
    """
    exclude = tuple(exclude)
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        if "group" in field.metadata:
            inner, keywords = field.metadata["group"]
            add_options(parser, inner, **keywords)
        elif "help" in field.metadata:
            parser.add_argument(flag(field), **_argument(
                cls, field, unset=unset, required=required))


def _argument(cls, field, *, unset: bool, required: bool) -> dict:
    kind = _kind(cls, field)
    kwargs: dict[str, Any] = {"help": _help(field)}
    if "metavar" in field.metadata:
        kwargs["metavar"] = field.metadata["metavar"]
    if kind is bool:
        return kwargs | {"action": "store_true",
                         "default": None if unset else False}
    if kind is tuple:
        return kwargs | {"action": "append", "default": None}
    choices = field.metadata.get("choices")
    if typing.get_origin(kind) is Literal:
        choices, kind = choices or typing.get_args(kind), str
    if choices is not None:
        kwargs["choices"] = tuple(choices)
    if required and not unset and not _has_default(field):
        kwargs["required"] = True
    return kwargs | {"type": kind,
                     "default": parser_default(field, unset=unset)}


def values(args, cls, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The options of dataclass `cls` in parsed arguments, by field name
    (a repeatable option's as a tuple, a group's as a dict)."""
    exclude, found = tuple(exclude), {}
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        if "group" in field.metadata:
            inner, keywords = field.metadata["group"]
            found[field.name] = values(args, inner,
                                       exclude=keywords["exclude"])
        elif "help" in field.metadata:
            value = getattr(args, _dest(field))
            if _kind(cls, field) is tuple:
                value = tuple(value or ())
            found[field.name] = value
    return found


def argv(cls, given: Mapping[str, Any], *, unset: bool = False
         ) -> list[str]:
    """The options of dataclass `cls` in `given` (by field name) as
    command-line arguments, those at their parser default left out:
    `argv(StudySpec, {"retrain_best": True, "seed": 1})` is
    `["--retrain-best", "--seed", "1"]`.
    """
    arguments = []
    for field in dataclasses.fields(cls):
        if field.name not in given:
            continue
        value = given[field.name]
        if "group" in field.metadata:
            inner, keywords = field.metadata["group"]
            arguments += argv(inner, value, unset=keywords["unset"])
        elif "help" not in field.metadata:
            continue
        elif _kind(cls, field) is tuple:
            for item in value:
                arguments += [flag(field), str(item)]
        elif _kind(cls, field) is bool:
            arguments += [flag(field)] if value else []
        elif value is not None and value != parser_default(field,
                                                           unset=unset):
            arguments += [flag(field), str(value)]
    return arguments
