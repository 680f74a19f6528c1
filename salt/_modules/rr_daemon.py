"""
Long-running processes kept by a pid file, for hosts where no init system
supervises them: the testbed's labs, whose minions run in network
namespaces without systemd, and containers.

A process is started detached (its own session, output to a log file) in
the minion's network namespace, and recorded in ``PIDFILE`` with its start
time, arguments and environment in ``PIDFILE.spec``. It counts as running
while that pid is alive with that start time, so a reused pid or a process
that rewrote its command line (nginx does) is judged right. Stopping
signals its process group (its own, made at start).
"""

import hashlib
import json
import os
import signal
import subprocess
import time

__virtualname__ = "rr_daemon"

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The processes this one started: kept so that Python neither warns about
# them nor loses them before they are reaped (they outlive the salt job
# that starts them, which is how a daemon is meant to).
_STARTED = []


def __virtual__():
    if os.name == "posix":
        return __virtualname__
    return (False, "rr_daemon: POSIX only")


def _start_time(pid):
    """The process's start time as the kernel counts it, or None when it is gone or a zombie."""
    try:
        with open("/proc/{}/stat".format(pid), encoding="utf-8") as handle:
            stat = handle.read()
    except OSError:
        if not os.path.isdir("/proc/self"):
            return _start_time_ps(pid)
        return None
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _start_time_ps(pid):
    result = subprocess.run(
        ["ps", "-o", "lstart=,state=", "-p", str(pid)],
        capture_output=True, text=True, check=False,
    )
    text = result.stdout.strip()
    if result.returncode != 0 or not text or text.split()[-1].startswith("Z"):
        return None
    return " ".join(text.split()[:-1])


def _read_spec(pidfile):
    try:
        with open(pidfile + ".spec", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def status(pidfile):
    """
    The running process ``pidfile`` names, as ``{pid, spec}``, or ``None``
    when none is (no file, a dead pid, or a pid now used by another process).
    """
    spec = _read_spec(pidfile)
    if not spec:
        return None
    pid = spec.get("pid")
    if not isinstance(pid, int) or _start_time(pid) != spec.get("start_time"):
        return None
    return {"pid": pid, "spec": {key: spec.get(key) for key in ("args", "env", "cwd", "files")}}


def digest(files):
    """A SHA-256 over the contents of ``files`` (a missing one counts as empty)."""
    hashed = hashlib.sha256()
    for path in files:
        hashed.update(path.encode() + b"\0")
        try:
            with open(path, "rb") as handle:
                hashed.update(handle.read())
        except FileNotFoundError:
            pass
        hashed.update(b"\0")
    return hashed.hexdigest()


def _write_atomically(path, text):
    temporary = "{}.{}.tmp".format(path, os.getpid())
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def _listening(port):
    """Whether something listens on TCP ``port`` in this network namespace."""
    wanted = ":{:04X}".format(int(port))
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="utf-8") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[1].endswith(wanted) and fields[3] == "0A":
                        return True
        except OSError:
            continue
    return False


def _tail(log, lines=15):
    try:
        with open(log, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


def _ready(ready, log, since=0):
    """True when ``ready`` holds; a log line counts only after byte ``since``
    (this start's), not one a previous run left in the appended log."""
    if not ready:
        return True
    if "log" in ready:
        try:
            with open(log, "rb") as handle:
                handle.seek(since)
                if ready["log"] not in handle.read().decode("utf-8", "replace"):
                    return False
        except OSError:
            return False
    if "tcp" in ready and not _listening(ready["tcp"]):
        return False
    if "path" in ready and not os.path.exists(ready["path"]):
        return False
    return True


def start(args, pidfile, log, env=None, cwd="/", ready=None, timeout=20, files=None):
    """
    Starts ``args`` detached, output appended to ``log``, and waits (at most
    ``timeout`` s) until it is ``ready``: ``{"log": TEXT}`` (TEXT in its
    log), ``{"tcp": PORT}`` (listening in this namespace), ``{"path": P}``
    (P exists), any together. Returns the pid; raises when it exits or is
    not ready in time, naming why and the end of its log. ``files`` (its
    configuration) are recorded by digest: ``status`` returns it.
    """
    env = {str(key): str(value) for key, value in (env or {}).items()}
    for path in (pidfile, log):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    environment = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root"}
    environment.update(env)
    with open(log, "ab") as output:
        output.write("== {} starting: {}\n".format(time.strftime("%Y-%m-%dT%H:%M:%S"), args).encode())
        output.flush()
        since = output.tell()
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            [str(arg) for arg in args],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _STARTED.append(process)
    spec = {
        "pid": process.pid,
        "start_time": _start_time(process.pid),
        "args": [str(arg) for arg in args],
        "env": env,
        "cwd": cwd,
        "files": digest(files) if files else None,
    }
    _write_atomically(pidfile + ".spec", json.dumps(spec, sort_keys=True))
    _write_atomically(pidfile, "{}\n".format(process.pid))
    deadline = time.monotonic() + float(timeout)
    while True:
        code = process.poll()
        if code is not None:
            raise RuntimeError(
                "{} exited with {} at start; the end of {}:\n{}".format(args[0], code, log, _tail(log))
            )
        if _ready(ready, log, since):
            return process.pid
        if time.monotonic() > deadline:
            stop(pidfile)
            raise RuntimeError(
                "{} not ready ({}) within {} s; the end of {}:\n{}".format(
                    args[0], ready, timeout, log, _tail(log)
                )
            )
        time.sleep(0.1)


def stop(pidfile, timeout=10):
    """
    Stops the process ``pidfile`` names (SIGTERM to its process group, then
    SIGKILL after ``timeout`` s) and removes the pid file. True when one ran.
    """
    running = status(pidfile)
    stopped = False
    if running:
        pid = running["pid"]
        start_time = _start_time(pid)

        def signal_group(signum):
            try:
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signum)
                else:
                    os.kill(pid, signum)
            except ProcessLookupError:
                pass

        signal_group(signal.SIGTERM)
        deadline = time.monotonic() + float(timeout)
        while _start_time(pid) == start_time and time.monotonic() < deadline:
            time.sleep(0.05)
        if _start_time(pid) == start_time:
            signal_group(signal.SIGKILL)
        stopped = True
    for path in (pidfile, pidfile + ".spec"):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    return stopped
