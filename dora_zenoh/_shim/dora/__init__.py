"""The `dora` module that node processes started by dora-zenoh see.

dora-zenoh puts this folder on the PYTHONPATH of the nodes it starts, so a script
written for dora-rs (`from dora import Node`) runs unchanged, without a package
named `dora` in the user's environment.

dora-rs's ROS 2 bridge (``Ros2Context`` and the other ``Ros2*`` classes) is not part
of dora-zenoh: those names exist, so that importing them works, but using one raises
a NotImplementedError that says what to use instead.
"""
from typing import Any

from dora_zenoh import DoraStatus, Node  # noqa: F401

__all__ = ["Node", "DoraStatus"]

_ROS2 = ("Ros2Context", "Ros2Node", "Ros2NodeOptions", "Ros2Topic", "Ros2Publisher", "Ros2Subscription",
         "Ros2QosPolicies", "Ros2Durability", "Ros2Liveliness", "Ros2Transport", "Ros2ServiceClient",
         "Ros2ServiceServer", "Ros2ActionClient", "Ros2ActionServer")


def _ros2_class(name: str) -> type:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            f"dora.{name}: dora-zenoh has no ROS 2 bridge (dora-rs's Ros2Context/Ros2Node/... classes). "
            "Bridge ROS 2 to Zenoh with zenoh-plugin-ros2dds (zenoh-bridge-ros2dds) and read its keys "
            "from a ROS-like node, Node('id', inputs={...}); see docs/coming-from-dora.md")

    return type(name, (), {"__init__": refuse, "__doc__": f"Not available in dora-zenoh: {name} (ROS 2)."})


for _name in _ROS2:
    globals()[_name] = _ros2_class(_name)
