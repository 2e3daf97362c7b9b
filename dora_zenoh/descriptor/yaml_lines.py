"""Load YAML into plain Python data *and* remember which line every value came from.

``yaml.safe_load`` throws the source positions away, yet every problem we report
about a dataflow has to point at a line. So we compose the document into
PyYAML's node graph (which keeps ``start_mark`` on every node) and build the
plain data ourselves, recording a map from *path tuples* to 1-based lines::

    ("nodes", 2, "inputs", "tick")  ->  17

For a mapping entry the line is the line of its **key** (that is where the eye
goes, and a value may start on a later line or be empty). For a sequence item
it is the line of the item itself.

A few deliberate differences from ``yaml.safe_load``:

* mapping keys are kept as the text written in the file (``yes: a/b`` gives the
  key ``"yes"``, not ``True``; ``8080: x`` gives ``"8080"``). Every key in a
  dataflow is a name, so the written text is what the user means;
* a key given twice in one mapping is reported as an issue instead of silently
  keeping the last value;
* merge keys (``<<: *defaults``) are supported; explicit keys override merged
  ones without being reported as duplicates.

Syntax errors are not caught here: PyYAML raises ``yaml.MarkedYAMLError``,
whose ``problem_mark`` the caller turns into a line/column.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[Hashable, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
#: Expanding aliases can blow a small file up exponentially ("billion laughs");
#: no real dataflow comes anywhere near this many values.
_MAX_VALUES = 200_000


@dataclass
class YamlIssue:
    """A structural problem the YAML parser itself does not flag (duplicate key, odd key)."""

    line: int
    message: str
    hint: str | None = None


@dataclass
class LoadedYaml:
    """Plain data of one YAML document plus where each part of it was written."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    issues: list[YamlIssue] = field(default_factory=list)

    def line_of(self, path: Path_) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


class _TooBig(Exception):
    pass


class _Builder:
    """Turns a composed node graph into plain data while filling ``LoadedYaml``."""

    def __init__(self, loader: yaml.SafeLoader, out: LoadedYaml) -> None:
        self._loader = loader
        self._out = out
        self._active: set[int] = set()  # ids of nodes being built, to stop recursive aliases
        self._count = 0

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self._count += 1
        if self._count > _MAX_VALUES:
            raise _TooBig
        if isinstance(node, yaml.ScalarNode):
            # The loader's constructor applies the usual YAML 1.1 typing (int, bool, null...).
            return self._loader.construct_object(node, deep=True)
        if id(node) in self._active:
            self._out.issues.append(
                YamlIssue(node.start_mark.line + 1, "a YAML alias refers to a value that contains it")
            )
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                items = []
                for index, child in enumerate(node.value):
                    self._out.lines[path + (index,)] = child.start_mark.line + 1
                    items.append(self.build(child, path + (index,)))
                return items
            return self._build_mapping(node, path)
        finally:
            self._active.discard(id(node))

    def _build_mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merged.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._out.issues.append(
                    YamlIssue(key_line, "a mapping key must be a plain name, not a list or a mapping")
                )
                continue
            key = str(key_node.value)
            if key in first_line:
                self._out.issues.append(
                    YamlIssue(
                        key_line,
                        f"key '{key}' is given twice in the same mapping",
                        f"the first '{key}' is at line {first_line[key]}; keep only one",
                    )
                )
            else:
                first_line[key] = key_line
            self._out.lines[path + (key,)] = key_line
            result[key] = self.build(value_node, path + (key,))
        for value_node in merged:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self._out.issues.append(
                        YamlIssue(source.start_mark.line + 1, "'<<' can only merge mappings")
                    )
                    continue
                for key, value in self._build_mapping(source, path + ("<<",)).items():
                    if key not in result:  # explicit keys win over merged ones
                        result[key] = value
                        self._out.lines[path + (key,)] = self._out.lines.get(
                            path + ("<<", key), source.start_mark.line + 1
                        )
        return result


def load_yaml_with_lines(text: str) -> LoadedYaml:
    """Parse one YAML document. Raises ``yaml.YAMLError`` (usually marked) on bad syntax.

    An empty document gives ``data=None``.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        out = LoadedYaml(data=None)
        if root is None:
            return out
        out.lines[()] = root.start_mark.line + 1
        try:
            out.data = _Builder(loader, out).build(root, ())
        except _TooBig:
            out.data = None
            out.issues.append(
                YamlIssue(1, f"the document expands to more than {_MAX_VALUES} values (through YAML aliases)")
            )
        return out
    finally:
        loader.dispose()
