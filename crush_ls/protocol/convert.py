"""Converters between JSON and our attrs classes.

Two strict converters: ``PARAMS`` for request params (camelCase on the wire)
and ``STRICT`` for tool input and config files (snake_case, as Crush's tools
and crush.json spell them). Strict means no coercion: ``"no"`` is not a bool
and ``5`` is not a string, and a string holding a lone surrogate (``"\\ud800"``
is valid JSON, but no UTF-8 can hold it, so it could not be stored or sent on
to a model) is refused. ``describe_structure_error`` turns a cattrs error
into one line naming the field as the sender spelled it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, override

T = TypeVar("T")


def camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


_PY_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}


_SURROGATE = re.compile("[\ud800-\udfff]")


def _strict(expected: type) -> Callable[[Any, type], Any]:
    def hook(value: Any, _cls: type) -> Any:
        if expected is str and isinstance(value, str):
            return value if value.isascii() else _no_surrogate(value)
        if expected is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return float(value) if ok else _reject(expected, value)
        if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
            return value
        return _reject(expected, value)

    return hook


def _no_surrogate(value: str) -> str:
    found = _SURROGATE.search(value)
    if found:
        raise ValueError(f"string holds a lone surrogate (U+{ord(found.group()):04X}) at index {found.start()}, "
                         "which cannot be stored")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return _PY_NAMES.get(type(value), type(value).__name__)


def _reject(expected: type, value: Any) -> NoReturn:
    raise TypeError(f"expected {_PY_NAMES.get(expected, expected.__name__)}, got {_json_type(value)}")


def _any(value: Any, _cls: type) -> Any:
    return value


def _dict(value: Any, _cls: type) -> Any:
    if not isinstance(value, dict):
        raise TypeError(f"expected object, got {_json_type(value)}")
    return value


def _make(camel_case: bool) -> cattrs.Converter:
    conv = cattrs.Converter()
    for t in (str, int, float, bool):
        conv.register_structure_hook(t, _strict(t))
    conv.register_structure_hook(Any, _any)
    conv.register_structure_hook_func(
        lambda t: t is dict or getattr(t, "__origin__", None) is dict, _dict
    )

    def list_hook(value: Any, cls: type) -> Any:
        if not isinstance(value, list):
            raise TypeError(f"expected array, got {_json_type(value)}")
        (item,) = getattr(cls, "__args__", (Any,))
        out, errors = [], []
        for index, v in enumerate(value):
            try:
                out.append(conv.structure(v, item))
            except Exception as exc:  # noqa: BLE001 - collected, named by index (`@ params.context[2].uri`)
                exc.__notes__ = [*getattr(exc, "__notes__", []),
                                 IterableValidationNote(f"Structuring item @ index {index}", index, item)]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {cls!r}", errors, cls)
        return out

    conv.register_structure_hook_func(
        lambda t: getattr(t, "__origin__", None) is list, list_hook
    )

    def factory(cls: type) -> Callable[[Any, type], Any]:
        renames = {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)} if camel_case else {}
        # the renames are keyword arguments by field name, which the stub cannot know
        structure: Callable[[Any, type], Any] = make_dict_structure_fn(
            cls, conv, _cattrs_detailed_validation=True, **renames)  # type: ignore[arg-type]

        def structure_object(value: Any, target: type) -> Any:
            if not isinstance(value, dict):  # cattrs would read fields off any mapping-like value
                raise TypeError(f"expected object, got {_json_type(value)}")
            # null means "not given": optional fields take their default, required ones are missing.
            return structure({k: v for k, v in value.items() if v is not None}, target)

        return structure_object

    conv.register_structure_hook_factory(attrs.has, factory)
    return conv


PARAMS = _make(camel_case=True)
STRICT = _make(camel_case=False)


def _format(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    literal = _LITERAL.match(str(exc))
    if literal:  # cattrs says "x not in literal typing.Literal[...]"
        return f"{literal.group(1)!r} is not one of {literal.group(2)}"
    return str(exc) or type(exc).__name__


_LITERAL = re.compile(r"^(.*) not in literal typing\.Literal\[(.*)\]$")


_FIELD = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)")


def describe_structure_error(exc: BaseException, path: str = "", camel_case: bool = False) -> str:
    """One readable line: 'expected string, got integer @ params.sessionId'."""
    if isinstance(exc, cattrs.BaseValidationError):
        lines = cattrs.transform_error(exc, path=path or "$", format_exception=_format)
        if camel_case:
            lines = [_FIELD.sub(lambda m: "." + camel(m.group(1)), line) for line in lines]
        if not path:
            lines = [line.replace(" @ $.", " @ ").replace(" @ $", "") for line in lines]
        return "; ".join(lines)
    return str(exc) or type(exc).__name__


_PARAMS_HOOKS: dict[type, Callable[[Any, type], Any]] = {}  # by params class: looked up once, not per request


def _params_hook(cls: type) -> Callable[[Any, type], Any]:
    hook = _PARAMS_HOOKS.get(cls)
    if hook is None:
        hook = _PARAMS_HOOKS[cls] = PARAMS.get_structure_hook(cls)
    return hook


def structure_params(raw: Any, cls: type[T]) -> T:
    """Structure request params; raises ValueError with a readable message."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"params must be an object, got {_json_type(raw)}")
    try:
        params: T = _params_hook(cls)(raw, cls)
        return params
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        raise ValueError(describe_structure_error(exc, path="params", camel_case=True)) from exc
