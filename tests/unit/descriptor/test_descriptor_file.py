"""The file as a whole: reading it, YAML syntax, how problems are reported (descriptor.load, .model)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
from descriptor_files import FIXTURES, only_problem, problems_of, write

from dora_zenoh.descriptor import DescriptorError, Problem, load_descriptor


def test_problem_format() -> None:
    problem = Problem(
        "dataflow.yml",
        12,
        "camera",
        "input 'image' names output 'frame' of node 'cam', which it does not declare",
        "declared outputs of 'cam': image, depth",
    )
    assert str(problem) == (
        "dataflow.yml:12: node 'camera': input 'image' names output 'frame' of node 'cam', which it does not declare"
        "\n  hint: declared outputs of 'cam': image, depth"
    )
    assert str(Problem("d.yml", 3, None, "boom", None)) == "d.yml:3: boom"
    assert str(Problem("d.yml", None, None, "file not found", None)) == "d.yml: file not found"


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path dynamic\n  - id: b\n")
    problem = only_problem(path)
    assert problem.line == 3
    assert problem.message.startswith("YAML syntax error: could not find expected ':'")


def test_yaml_unclosed_quote(tmp_path: Path) -> None:
    path = write(tmp_path, 'nodes:\n  - id: a\n    path: "dynamic\n    outputs: [x]\n')
    problem = only_problem(path)
    assert problem.message.startswith("YAML syntax error")
    assert "line 3" in (problem.hint or "")


def test_yaml_tab_indentation(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n\tpath: dynamic\n")
    problem = only_problem(path)
    assert problem.line == 3
    assert "tabs" in (problem.hint or "")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    outputs: [x]\n    outputs: [y]\n")
    problem = only_problem(path)
    assert (problem.line, problem.message) == (5, "key 'outputs' is given twice in the same mapping")
    assert problem.hint == "the first 'outputs' is at line 4; keep only one"


def test_several_problems_at_once(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "many_problems.yml", tmp_path / "dataflow.yml")
    (tmp_path / "camera.py").write_text("")
    (tmp_path / "plot.py").write_text("")
    problems = problems_of(tmp_path / "dataflow.yml")
    found = [(p.line, p.node, p.message) for p in problems]
    assert found == [
        (5, "camera", "unknown key 'ouputs'"),
        (6, "camera", "node id 'camera' is used twice"),
        (11, "plot", "input 'image' names output 'frame' of node 'camera', which it does not declare"),
        (12, "plot", "input 'other' reads from node 'camra', which does not exist"),
        (13, "plot", "input 'tick' has unknown timer unit 'minutes' in 'dora/timer/minutes/1'"),
        (14, "plot", "input 'me' reads 'plot/out', an output of its own node"),
        (16, "plot", "send_stdout_as names 'logs', which is not one of its outputs"),
        (17, "bad/id", "node id 'bad/id' is not a valid id"),
        (18, "bad/id", f"path 'missing.py' does not exist (looked in {tmp_path})"),
    ]
    with pytest.raises(DescriptorError) as info:
        load_descriptor(tmp_path / "dataflow.yml")
    text = str(info.value)
    assert text.splitlines()[-1] == f"9 problems found in {tmp_path / 'dataflow.yml'}"
    assert text.startswith(str(problems[0]))
    assert all(str(p) in text for p in problems)


def test_descriptor_error_singular_and_pickle(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    inputs: {x: b/y}\n")
    with pytest.raises(DescriptorError) as info:
        load_descriptor(path)
    assert str(info.value).splitlines()[-1] == f"1 problem found in {path}"
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.problems == info.value.problems
    assert str(copy) == str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("# just a comment\n", "the file is empty"),
        ("- a\n- b\n", "the top level must be a mapping with a 'nodes:' key, not a list"),
        ("nodes: []\n", "the dataflow has no nodes"),
        ("nodes: 3\n", "nodes should be a valid list (got 3)"),
        ("name: x\n", "missing required key 'nodes'"),
        ("nodes:\n  - just a string\n", "each entry of 'nodes' must be a mapping"),
    ],
)
def test_unusable_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "dataflow.yml"
    path.write_text(content)
    assert only_problem(path).message == message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    problem = only_problem(tmp_path / "nope.yml")
    assert (problem.file, problem.line, problem.message) == (
        str(tmp_path / "nope.yml"),
        None,
        "file not found",
    )
    assert only_problem(tmp_path).message == "is a folder, not a dataflow file"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "dataflow.yml"
    path.write_bytes(b"nodes:\n  - id: \xff\xfe\n")
    assert only_problem(path).message.startswith("is not UTF-8 text")


def test_file_label_is_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "nodes:\n  - id: a\n    path: gone.py\n")
    monkeypatch.chdir(tmp_path)
    problem = only_problem(Path("dataflow.yml"))
    assert str(problem).startswith("dataflow.yml:3: node 'a': path 'gone.py' does not exist")
