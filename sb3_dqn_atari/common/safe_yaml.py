"""The one YAML reader for everything that comes with a model: a run folder, a zip's companions, a Hub repo.

rl-zoo3 writes its ``args.yml`` and ``config.yml`` with ``yaml.dump`` of an ``OrderedDict``, which PyYAML tags
``!!python/object/apply:collections.OrderedDict``, and reads them back with ``yaml.UnsafeLoader``, which
*calls* whatever a ``!!python/object/apply:`` tag names (``!!python/object/apply:os.system ["..."]`` runs a shell
command). :class:`ZooYamlLoader` is a ``yaml.SafeLoader`` that understands what rl-zoo3 writes and nothing more:

* ``!!python/object/apply:collections.OrderedDict`` in the exact form PyYAML writes it (one argument: a list of
  ``[key, value]`` pairs), read as a plain ``dict`` (insertion-ordered, as the ``OrderedDict`` was);
* ``!!python/tuple`` (a tuple of plain values: rl-zoo3 writes one for ``-params train_freq:"(4, 'step')"``);
* ``!!python/name:<class>`` (rl-zoo3 writes one for ``-params policy_kwargs:"dict(activation_fn=nn.Tanh)"``),
  only for a class of an allowed package (:func:`sb3_dqn_atari.common.trust.check_class_name`); it is read as a
  :class:`DottedName` (the name as a string), never imported.

Every other Python tag is refused with one line (:class:`UnsafeYamlError`), e.g. ``config.yml carries a Python
object tag (!!python/object/apply:os.system); not loaded (use --trust-remote-code for files you trust)``.
``trust_remote_code=True`` reads the file as rl-zoo3 does (``yaml.UnsafeLoader``).

Bounds: a file over :data:`MAX_YAML_BYTES` is not parsed; a document that refers to itself (``&a [*a]``) or whose
aliases expand to more than :data:`MAX_YAML_VALUES` values ("billion laughs") is refused, so that whatever
walks the result afterwards (checks, ``json.dumps``) terminates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sb3_dqn_atari.common.errors import UserError, one_line
from sb3_dqn_atari.common.files import read_bounded
from sb3_dqn_atari.common.sources import TRUST_HINT, UntrustedError, check_class_name

#: Largest YAML file read (rl-zoo3's files are a few kB).
MAX_YAML_BYTES = 4 << 20
#: Largest number of values a document may hold, counting every use of an alias.
MAX_YAML_VALUES = 100_000
#: Deepest nesting of lists and mappings.
MAX_YAML_DEPTH = 64

_PYTHON_TAG = "tag:yaml.org,2002:python/"
ORDERED_DICT_TAG = _PYTHON_TAG + "object/apply:collections.OrderedDict"
TUPLE_TAG = _PYTHON_TAG + "tuple"
NAME_TAG_PREFIX = _PYTHON_TAG + "name:"


class UnsafeYamlError(UserError):
    """A YAML file that would run code (a Python tag other than rl-zoo3's), or that is too big to walk."""


class DottedName(str):
    """A ``!!python/name:`` reference to an allowed class, kept as its dotted name (never imported)."""


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


class ZooYamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` plus exactly the Python tags rl-zoo3 writes (see the module docstring)."""

    #: the file being read, for messages
    source = "<yaml>"

    def refuse(self, node: yaml.Node, why: str = "") -> UnsafeYamlError:
        detail = f" {why}" if why else ""
        return UnsafeYamlError(
            f"{self.source} carries a Python object tag ({one_line(_short_tag(node.tag), 120)}){detail}; "
            f"not loaded ({TRUST_HINT})"
        )

    def construct_undefined(self, node: yaml.Node) -> Any:
        if node.tag.startswith(_PYTHON_TAG):
            raise self.refuse(node)
        return super().construct_undefined(node)


def _construct_ordered_dict(loader: ZooYamlLoader, node: yaml.Node) -> dict[Any, Any]:
    """PyYAML's ``OrderedDict`` form: ``!!python/object/apply:collections.OrderedDict`` over ``[[[k, v], ...]]``."""
    if not isinstance(node, yaml.SequenceNode) or len(node.value) > 1 or not all(
        isinstance(pairs, yaml.SequenceNode) for pairs in node.value
    ):
        raise loader.refuse(node, "in a form other than the one rl-zoo3 writes")
    result: dict[Any, Any] = {}
    for pair in node.value[0].value if node.value else []:
        if not isinstance(pair, yaml.SequenceNode) or len(pair.value) != 2:
            raise loader.refuse(node, "with an entry that is not a [key, value] pair")
        key = loader.construct_object(pair.value[0], deep=True)
        try:
            hash(key)
        except TypeError:
            raise loader.refuse(node, "with an unhashable key") from None
        result[key] = loader.construct_object(pair.value[1], deep=True)
    return result


def _construct_tuple(loader: ZooYamlLoader, node: yaml.Node) -> tuple[Any, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise loader.refuse(node, "that is not a sequence")
    return tuple(loader.construct_sequence(node, deep=True))


def _construct_name(loader: ZooYamlLoader, suffix: str, node: yaml.Node) -> DottedName:
    if not isinstance(node, yaml.ScalarNode) or node.value:
        raise loader.refuse(node, "with a value")
    try:
        check_class_name(suffix, "a !!python/name tag", loader.source)
    except UntrustedError:
        raise loader.refuse(node, "naming something other than a class of an allowed package") from None
    return DottedName(suffix)


ZooYamlLoader.add_constructor(None, ZooYamlLoader.construct_undefined)  # SafeLoader registered its own for None
ZooYamlLoader.add_constructor(ORDERED_DICT_TAG, _construct_ordered_dict)
ZooYamlLoader.add_constructor(TUPLE_TAG, _construct_tuple)
ZooYamlLoader.add_multi_constructor(NAME_TAG_PREFIX, _construct_name)


def plain_data(value: Any) -> Any:
    """``value`` with what :class:`ZooYamlLoader` adds to plain YAML made plain again (tuples as lists, a
    :class:`DottedName` as a ``str``), for ``yaml.safe_dump``. Unknown objects are kept (and refused by the dumper)."""
    if isinstance(value, DottedName):
        return str(value)
    if isinstance(value, dict):
        return {plain_data(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    return value


def check_tree(data: Any, source: str, max_values: int = MAX_YAML_VALUES, max_depth: int = MAX_YAML_DEPTH) -> None:
    """Refuse a loaded document that refers to itself, nests deeper than ``max_depth`` or holds more than
    ``max_values`` values (each use of an alias counted): what walks it afterwards then always terminates."""
    count = 0
    # (value, depth, ids of the containers above it)
    stack: list[tuple[Any, int, frozenset[int]]] = [(data, 0, frozenset())]
    while stack:
        value, depth, above = stack.pop()
        count += 1
        if count > max_values:
            raise UnsafeYamlError(f"{source} holds more than {max_values:,} values (aliases expanding?); not loaded")
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, (list, tuple, set)):
            children = list(value)
        else:
            continue
        if id(value) in above:
            raise UnsafeYamlError(f"{source} holds a value that contains itself (a recursive alias); not loaded")
        if depth >= max_depth:
            raise UnsafeYamlError(f"{source} nests lists or mappings more than {max_depth} deep; not loaded")
        inner = above | {id(value)}
        stack.extend((child, depth + 1, inner) for child in children)


def _too_large(source: str) -> UnsafeYamlError:
    return UnsafeYamlError(f"{source} is larger than {MAX_YAML_BYTES >> 20} MiB; not loaded")


def load_yaml(text: str | bytes, source: str, trust_remote_code: bool = False) -> Any:
    """Parse ``text`` (from ``source``, named in messages) with :class:`ZooYamlLoader`, or with
    ``yaml.UnsafeLoader`` when ``trust_remote_code``; raise :class:`UserError` for invalid YAML and
    :class:`UnsafeYamlError` for a Python tag or an oversized document."""
    if len(text) > MAX_YAML_BYTES:
        raise _too_large(source)
    try:
        if trust_remote_code:
            data = yaml.load(text, Loader=yaml.UnsafeLoader)  # rl-zoo3's own reader: only for trusted files
        else:
            loader = ZooYamlLoader(text)
            loader.source = source
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        raise UserError(f"{source} is not valid YAML ({exc.__class__.__name__}{where}); fix or remove it") from exc
    except RecursionError as exc:
        raise UnsafeYamlError(f"{source} nests too deeply to be read; not loaded") from exc
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:  # e.g. a tuple or set of unhashable values
        raise UserError(f"{source} cannot be read ({exc.__class__.__name__}: {one_line(str(exc), 120)})") from exc
    check_tree(data, source)
    return data


def read_yaml(path: str | Path, trust_remote_code: bool = False, source: str | None = None) -> Any:
    """:func:`load_yaml` of the file at ``path`` (its size checked before it is read); messages name it
    ``source`` (default: the path; a downloaded file is named by its repo)."""
    source = source or str(path)
    data = read_bounded(path, MAX_YAML_BYTES, source, lambda: _too_large(source))
    return load_yaml(data, source, trust_remote_code)


def read_yaml_mapping(path: str | Path, trust_remote_code: bool = False, source: str | None = None) -> dict[str, Any]:
    """An rl-zoo3 file (``args.yml``, ``config.yml``, ``env_kwargs.yml``): a mapping, or ``{}`` when empty."""
    data = read_yaml(path, trust_remote_code, source)
    path = source or path
    if data is None:
        return {}
    if isinstance(data, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in data):
        try:
            data = dict(data)  # an OrderedDict dumped as a plain list of [key, value] pairs
        except TypeError as exc:
            raise UserError(f"{path} has a key that is not a plain value; fix or remove it") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a {type(data).__name__}, not the mapping rl-zoo3 writes; fix or remove it")
    return data
