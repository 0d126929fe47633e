"""Spider arguments (`-a NAME=VALUE`): one frozen dataclass per spider, read and checked once.

Scrapy hands a spider its `-a` arguments as strings and, by default, sets any name it is
given as an attribute, so `-a catgories=48` (a typo) crawls everything and exits 0. Here
each spider names its arguments in a dataclass: a field's type says how its text is read
(`bool`: 1/0, true/false, yes/no, on/off; `int`; `tuple[str, ...]`: comma-separated;
`str`), its metadata gives the help `annals crawl --list` prints, and a name no field has,
or a value its type cannot read, is refused with the names the spider accepts.

Names starting with "_" are Scrapyd's own (it passes `_job`) and are left to Scrapy.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off", ""})

A = TypeVar("A", bound="Arguments")


class ArgumentError(ValueError):
    """A spider argument the spider does not take, or whose value it cannot read."""


def argument(default: Any, help: str) -> Any:
    """A field of an arguments dataclass: its default and the line `--list` prints."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Arguments:
    """What every annals spider takes."""

    base_url: str | None = argument(
        None, "send every request for the source's hosts to this origin (a local mirror)"
    )
    full: bool = argument(False, "walk every listing page and fetch every item again")
    lang: tuple[str, ...] = argument((), "languages to crawl, comma-separated")

    @classmethod
    def parse(cls: type[A], spider: str, given: Mapping[str, Any]) -> A:
        """The arguments from `-a` values (strings, or values already of the field's type
        when a test or a script builds the spider directly); ArgumentError otherwise."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(name for name in given if name not in fields)
        if unknown:
            raise ArgumentError(
                f"{spider} takes no argument {', '.join(unknown)}; it takes {', '.join(fields)}"
            )
        hints = typing.get_type_hints(cls)
        values = {
            name: _read(spider, name, hints[name], value)
            for name, value in given.items()
            if value is not None
        }
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(name, how it is written, help) for each argument, as `annals crawl --list`
        prints them."""
        hints = typing.get_type_hints(cls)
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default
            shown = "" if default in (None, (), False) else f" (default {_show(default)})"
            rows.append((f.name, _form(hints[f.name]), f"{f.metadata.get('help', '')}{shown}"))
        return rows


def split_private(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the spider's own arguments, Scrapyd's "_"-prefixed ones left to scrapy.Spider)."""
    own = {k: v for k, v in kwargs.items() if not k.startswith("_")}
    private = {k: v for k, v in kwargs.items() if k.startswith("_")}
    return own, private


def _base(hint: Any) -> Any:
    """`int | None` -> int; other types as they are."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [a for a in typing.get_args(hint) if a is not type(None)]
        return kinds[0] if len(kinds) == 1 else hint
    return hint


def _read(spider: str, name: str, hint: Any, value: Any) -> Any:
    kind = _base(hint)
    if not isinstance(value, str):
        return value  # given as a value by Python code, not as `-a` text
    text = value.strip()
    if kind is bool:
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise ArgumentError(f"{spider}: {name} takes 1 or 0 (true/false, yes/no), not {value!r}")
    if kind is int:
        if not text.isdigit():
            raise ArgumentError(f"{spider}: {name} must be a whole number, not {value!r}")
        return int(text)
    if typing.get_origin(kind) is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text


def _form(hint: Any) -> str:
    kind = _base(hint)
    if kind is bool:
        return "1|0"
    if kind is int:
        return "N"
    if typing.get_origin(kind) is tuple:
        return "A,B,..."
    return "TEXT"


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
