"""dora_zenoh.signals: an action that sets the very Event the main thread waits on cannot
deadlock. A real process gets SIGUSR1 every 0.2 ms while its main thread waits on an Event in a
tight loop: with a plain ``signal.signal`` handler calling ``Event.set`` it hung or died in 5 of
5 tries (the handler waited for the lock that the interrupted ``Event.wait`` held, as
`replay --loop` did after Ctrl-C); with ``on_signals`` it counts 2000 signals and ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

CHILD = textwrap.dedent("""
    import signal, threading
    from dora_zenoh.signals import on_signals
    ev, count = threading.Event(), [0]
    def act(signum):
        count[0] += 1
        ev.set()
    on_signals(act, signal.SIGUSR1)
    print("ready", flush=True)
    while count[0] < 2000:
        ev.wait(0.00001)
        ev.clear()
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    print("done", flush=True)
""")


def test_an_action_setting_the_event_the_main_thread_waits_on_does_not_deadlock():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while child.poll() is None and time.monotonic() < deadline:
            os.kill(child.pid, signal.SIGUSR1)
            time.sleep(0.0002)
        out, err = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0 and out.strip() == "done", (child.returncode, out, err[-2000:])
