"""Python operators: load a user's ``class Operator``, call it, judge what it returns.

An operator file defines ``class Operator``, constructed once without arguments, with
either handler form (``on_event`` wins when a class has both):

* dora >= 0.3: ``on_event(self, dora_event, send_output) -> DoraStatus``, where
  ``dora_event`` is the Node API's event mapping and ``send_output(id, data, metadata=None)``;
* 2022: ``on_input(self, input_id, value: bytes, send_output) -> DoraStatus``.

Users return whatever their generation of examples taught them: our ``DoraStatus``,
an ``Enum`` of their own (the original examples define one, sometimes with ``OK``
instead of ``CONTINUE``), a plain ``int`` or nothing. Only the *value* matters, so
all of those work; anything else is reported with the file, the operator and the
value, because a silently ignored status is a bug the user cannot see.

This module knows nothing of Zenoh: :mod:`dora_zenoh.operators.runtime` feeds it events.
"""
from __future__ import annotations

import enum
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from dora_zenoh.errors import OperatorLoadError

CONTINUE, STOP, STOP_ALL = 0, 1, 2
_STATUS_HINT = "return DoraStatus.CONTINUE, DoraStatus.STOP or DoraStatus.STOP_ALL (or 0, 1, 2, or None)"


def status_code(result: Any) -> int | None:
    """What a handler's return value asks for: CONTINUE, STOP or STOP_ALL; None if it is no status.

    ``None`` means continue (a handler that forgets to return must not stop), any Enum
    member with value 0/1/2 counts by its value, and so does a plain int (not a bool:
    ``return True`` is far more likely a mistake than a request to stop).
    """
    if result is None:
        return CONTINUE
    value = result.value if isinstance(result, enum.Enum) else result
    if isinstance(value, int) and not isinstance(value, bool) and value in (CONTINUE, STOP, STOP_ALL):
        return int(value)
    return None


def bad_status_message(result: Any) -> str:
    """Why ``result`` is not accepted, for the operator's error."""
    return f"returned {result!r}, which is not a DoraStatus: {_STATUS_HINT}"


def describe_exception(exc: BaseException) -> str:
    """One line about a handler's exception; names the bad value for ``DoraStatus.OK``-style slips.

    Returning a member that the operator's own ``DoraStatus`` enum lacks raises an
    AttributeError on the enum class before anything is returned: say so plainly.
    """
    obj = getattr(exc, "obj", None) if isinstance(exc, AttributeError) else None
    name = getattr(exc, "name", None)
    if isinstance(obj, enum.EnumMeta) and name:
        members = ", ".join(obj.__members__) or "none"
        return (f"used {obj.__name__}.{name}, which its enum {obj.__name__} does not define "
                f"(members: {members}); {_STATUS_HINT}")
    return f"raised {type(exc).__name__}: {exc}"


def _module_name(op_id: str) -> str:
    return "dora_operator_" + re.sub(r"\W", "_", op_id)


def load_module(path: Path, module_name: str) -> ModuleType:
    """Import ``path`` afresh as ``module_name`` and check it defines ``class Operator``.

    The module is in ``sys.modules`` while it runs (dataclasses and pickle look it up
    there); on failure the previous entry, if any, is put back.
    """
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise OperatorLoadError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(module_name)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        if not isinstance(getattr(module, "Operator", None), type):
            raise OperatorLoadError(f"{path.name} defines no `class Operator`")
        handler_form(module.Operator, path)
    except BaseException:
        if previous is None:
            sys.modules.pop(module_name, None)
        else:
            sys.modules[module_name] = previous
        raise
    return module


def handler_form(cls: type, path: Path) -> str:
    """``"event"`` (dora >= 0.3 ``on_event``) or ``"input"`` (2022 ``on_input``)."""
    if callable(getattr(cls, "on_event", None)):
        return "event"
    if callable(getattr(cls, "on_input", None)):
        return "input"
    raise OperatorLoadError(
        f"class Operator in {path.name} defines neither on_event(self, dora_event, send_output) "
        "nor on_input(self, input_id, value, send_output)")


class PythonOperator:
    """One operator of a runtime node: its file, its instance and whether it still runs.

    ``send_output`` is the callable handed to the handler; the runtime sets it.
    """

    def __init__(self, op_id: str, path: Path, inputs: list[str], outputs: list[str],
                 send_stdout_as: str | None) -> None:
        self.id = op_id
        self.path = path
        self.inputs = inputs
        self.outputs = outputs
        self.send_stdout_as = send_stdout_as
        self.module_name = _module_name(op_id)
        self.module: ModuleType | None = None
        self.instance: Any = None
        self.form = "event"
        self.stopped = False
        self.failure: str | None = None  # why it failed, for the run's result
        self.send_output: Callable[..., None] | None = None

    @property
    def label(self) -> str:
        """How messages name it: ``operator 'id' (file.py)``."""
        return f"operator '{self.id}' ({self.path.name})"

    def load(self) -> None:
        """Import the file and construct ``Operator()``; raises whatever they raise."""
        folder = str(self.path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # let it import the modules next to it, as a script would
        module = load_module(self.path, self.module_name)
        self.instance = module.Operator()
        self.module = module
        self.form = handler_form(module.Operator, self.path)

    def reload(self) -> None:
        """Re-import the file and give the *existing* instance the new class (state kept).

        ``__init__`` does not run again. Raises (and keeps the old code) if the new file
        fails to import or its class cannot take over the instance (e.g. other __slots__).
        """
        module = load_module(self.path, self.module_name)
        new_cls = module.Operator
        old_cls = type(self.instance)
        try:
            self.instance.__class__ = new_cls
        except TypeError as exc:
            if self.module is not None:
                sys.modules[self.module_name] = self.module
            raise OperatorLoadError(f"the new class Operator cannot take over the running instance: {exc}") \
                from exc
        try:
            self.form = handler_form(new_cls, self.path)
        except OperatorLoadError:
            self.instance.__class__ = old_cls
            raise
        self.module = module

    def call(self, event: Any) -> Any:
        """Run the handler on one event (an :class:`~dora_zenoh.node.events.Event` whose id has no
        ``opid/`` prefix) and return what it returned. Exceptions propagate."""
        if self.form == "event":
            return self.instance.on_event(event, self.send_output)
        return self.instance.on_input(event.id, event.data, self.send_output)
