"""The demo's SIGTERM handling: it unwinds the demo, and never a child pyroute2 forked."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from rrqctl.demo import interrupt_on_sigterm


def test_sigterm_unwinds_the_demo_but_kills_a_forked_child_outright(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    try:
        interrupt_on_sigterm()
        pid = os.fork()
        if pid == 0:  # as pyroute2's netns helper: told to go while the handler is inherited
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            finally:
                (tmp_path / "unwound").touch()  # what clean() would have done
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
        assert not (tmp_path / "unwound").exists()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    finally:
        signal.signal(signal.SIGTERM, before)
