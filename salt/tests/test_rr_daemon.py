"""rr_daemon: processes kept by pid file, started once, restarted on change."""

import os
import socket
import sys
import tempfile
import time
import unittest

from support import load


def loaded(test=False):
    module = load("_modules", "rr_daemon")
    salt = {"rr_daemon." + name: getattr(module, name)
            for name in ("status", "start", "stop", "digest")}
    state = load("_states", "rr_daemon", salt=salt, opts={"test": test})
    return module, state


class Daemons(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.module, self.state = loaded()
        self.pidfile = os.path.join(self.dir.name, "run", "sleeper.pid")
        self.log = os.path.join(self.dir.name, "log", "sleeper.log")
        # Cleanups run last first: stop the process, then reap what this
        # test started (killing what a test left past its pid file).
        self.addCleanup(lambda: [(process.kill(), process.wait(5)) for process in self.module._STARTED])
        self.addCleanup(lambda: self.module.stop(self.pidfile, timeout=2))

    def running(self, args, **kwargs):
        return self.state.running("sleeper", args, self.pidfile, self.log, **kwargs)

    def test_it_starts_once_then_is_no_change(self):
        ret = self.running(["sleep", "30"], env={"RR_X": 1})
        self.assertTrue(ret["result"], ret)
        pid = ret["changes"]["started"]
        self.assertEqual(self.module.status(self.pidfile)["pid"], pid)
        with open(self.pidfile, encoding="utf-8") as handle:
            self.assertEqual(int(handle.read()), pid)
        # Detached: its own session and process group.
        self.assertEqual(os.getsid(pid), pid)
        ret = self.running(["sleep", "30"], env={"RR_X": "1"})
        self.assertEqual((ret["result"], ret["changes"]), (True, {}), ret)

    def test_other_arguments_environment_or_configuration_restart_it(self):
        first = self.running(["sleep", "30"])["changes"]["started"]
        second = self.running(["sleep", "31"])["changes"]["restarted"]
        self.assertNotEqual(first, second)
        self.assertIsNone(self.module._start_time(first))
        third = self.running(["sleep", "31"], env={"A": "b"})["changes"]["restarted"]
        self.assertNotEqual(second, third)
        config = os.path.join(self.dir.name, "sleeper.conf")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write("one\n")
        self.running(["sleep", "31"], env={"A": "b"}, files=[config])
        self.assertEqual(self.running(["sleep", "31"], env={"A": "b"}, files=[config])["changes"], {})
        with open(config, "w", encoding="utf-8") as handle:
            handle.write("two\n")
        self.assertIn("restarted", self.running(["sleep", "31"], env={"A": "b"}, files=[config])["changes"])

    def test_a_dead_process_is_started_again(self):
        pid = self.running(["sleep", "30"])["changes"]["started"]
        os.kill(pid, 9)
        deadline = time.monotonic() + 5
        while self.module._start_time(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIsNone(self.module.status(self.pidfile))
        self.assertIn("started", self.running(["sleep", "30"])["changes"])

    def test_a_pid_reused_by_another_process_does_not_count(self):
        self.running(["sleep", "30"])
        spec_path = self.pidfile + ".spec"
        with open(spec_path, encoding="utf-8") as handle:
            text = handle.read()
        # The pid file now names this test's own process, started long before.
        own = text.replace('"pid": ', '"pid": {}, "was": '.format(os.getpid()), 1)
        with open(spec_path, "w", encoding="utf-8") as handle:
            handle.write(own)
        self.assertIsNone(self.module.status(self.pidfile))

    def test_it_waits_until_ready(self):
        port = free_port()
        script = ("import socket,time; time.sleep(0.5); s=socket.socket(); "
                  "s.bind(('127.0.0.1', {})); s.listen(); print('up', flush=True); time.sleep(30)").format(port)
        started = time.monotonic()
        ret = self.running([sys.executable, "-c", script], ready={"tcp": port, "log": "up"})
        self.assertTrue(ret["result"], ret)
        self.assertGreaterEqual(time.monotonic() - started, 0.5)
        self.assertTrue(self.module._listening(port))

    def test_a_ready_line_left_by_an_earlier_run_does_not_count(self):
        ready_once = [sys.executable, "-c", "print('up', flush=True); import time; time.sleep(30)"]
        self.assertTrue(self.running(ready_once, ready={"log": "up"})["result"])
        self.module.stop(self.pidfile)
        # Same log, a new command line that never says it is ready.
        ret = self.running(["sleep", "31"], ready={"log": "up"}, timeout=0.5)
        self.assertFalse(ret["result"], ret)
        self.assertIn("not ready", ret["comment"])

    def test_a_process_that_exits_at_start_fails_with_its_log(self):
        ret = self.running(["sh", "-c", "echo no such device >&2; exit 3"], ready={"path": "/nonexistent"})
        self.assertFalse(ret["result"])
        self.assertIn("exited with 3", ret["comment"])
        self.assertIn("no such device", ret["comment"])

    def test_one_never_ready_is_stopped_and_fails(self):
        ret = self.running(["sleep", "30"], ready={"path": os.path.join(self.dir.name, "never")}, timeout=0.5)
        self.assertFalse(ret["result"])
        self.assertIn("not ready", ret["comment"])
        self.assertIsNone(self.module.status(self.pidfile))

    def test_dead_stops_it_and_test_mode_changes_nothing(self):
        pid = self.running(["sleep", "30"])["changes"]["started"]
        _, testing = loaded(test=True)
        ret = testing.dead("sleeper", self.pidfile)
        self.assertIsNone(ret["result"])
        self.assertIsNotNone(self.module._start_time(pid))
        ret = self.state.dead("sleeper", self.pidfile)
        self.assertEqual(ret["changes"], {"stopped": pid})
        self.assertIsNone(self.module._start_time(pid))
        self.assertFalse(os.path.exists(self.pidfile))
        self.assertEqual(self.state.dead("sleeper", self.pidfile)["changes"], {})


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    unittest.main()
