"""Line-aware YAML loading shared by playbooks and compliance rules.

PyYAML silently keeps the last of two duplicate keys and forgets where every value came
from. Files that districts edit by hand need both: a duplicate key is an error, and every
error names the file, line and column of the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emergency.checking import Path_, Problem, dotted

__all__ = ["LoadedYaml", "Path_", "Problem", "dotted", "load_file", "load_text"]


@dataclass
class LoadedYaml:
    """Plain Python data plus the 1-based (line, column) of every key and value."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def where(self, path: Path_) -> tuple[int, int]:
        """The position of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (1, 1))

    def problem(self, path: Path_, message: str) -> Problem:
        line, column = self.where(path)
        return Problem(self.file, line, column, dotted(path), message)


class _Loader(yaml.SafeLoader):
    pass


MAX_NODES = 200_000  # aliases can expand a small file into a huge tree ("billion laughs")


class _TooLarge(Exception):
    pass


def _walk(node: yaml.Node, path: Path_, marks: dict, problems: list, file: str,
          constructor: yaml.constructor.SafeConstructor) -> Any:
    if len(marks) > MAX_NODES:
        raise _TooLarge
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            try:
                hash(key)
                plain = not isinstance(key, (list, dict, set, tuple))
            except TypeError:
                plain = False
            if not plain:
                problems.append(Problem(file, key_node.start_mark.line + 1,
                                        key_node.start_mark.column + 1, dotted(path),
                                        "a key must be a plain value"))
                continue
            if key in result:
                problems.append(Problem(file, key_node.start_mark.line + 1,
                                        key_node.start_mark.column + 1, dotted(path + (key,)),
                                        f"duplicate key '{key}'"))
                continue
            result[key] = _walk(value_node, path + (key,), marks, problems, file, constructor)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, path + (index,), marks, problems, file, constructor)
                for index, item in enumerate(node.value)]
    try:
        return constructor.construct_object(node, deep=True)
    except (ValueError, TypeError, IndexError, AttributeError, OverflowError) as exc:
        # PyYAML raises plain exceptions for values such as `2026-13-01` or `!!int x`.
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        problems.append(Problem(file, line, column, dotted(path), f"cannot read this value ({exc})"))
        return None


class _Constructor(yaml.constructor.SafeConstructor):
    """A fresh constructor per file: PyYAML's caches are neither bounded nor thread-safe."""


def load_text(text: str, file: str = "<string>") -> LoadedYaml:
    """Parse YAML text; syntax errors and duplicate keys become problems, never exceptions."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        return LoadedYaml(file, None, {}, [Problem(file, line, column, "", f"YAML syntax error: {reason}")])
    except yaml.YAMLError as exc:
        return LoadedYaml(file, None, {}, [Problem(file, 1, 1, "", f"YAML syntax error: {exc}")])
    if node is None:
        return LoadedYaml(file, None, {(): (1, 1)}, [Problem(file, 1, 1, "", "the file is empty")])
    marks: dict[Path_, tuple[int, int]] = {}
    problems: list[Problem] = []
    try:
        data = _walk(node, (), marks, problems, file, _Constructor())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = getattr(exc, "problem", None) or " ".join(str(exc).split())
        return LoadedYaml(file, None, {}, [Problem(file, line, column, "", f"YAML error: {reason}")])
    except _TooLarge:
        return LoadedYaml(file, None, {}, [Problem(file, 1, 1, "", "the document expands to too many values")])
    except RecursionError:
        return LoadedYaml(file, None, {}, [Problem(file, 1, 1, "", "the document nests too deeply")])
    return LoadedYaml(file, data, marks, problems)


def load_file(path: str | Path) -> LoadedYaml:
    """Read and parse one YAML file; an unreadable file is a problem, not an exception."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return LoadedYaml(str(path), None, {}, [Problem(str(path), 1, 1, "", f"cannot read file: {exc}")])
    return load_text(text, str(path))
