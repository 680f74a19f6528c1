"""
A long-running process kept by pid file (the ``rr_daemon`` execution
module), for hosts without an init system to supervise it: the testbed's
labs, where each minion runs in a network namespace and starts its
services there.

.. code-block:: yaml

    rusty_rail:
      rr_daemon.running:
        - args: [/usr/local/bin/rusty_rail]
        - env: {RR_DEVICE: eth0, RR_TARGET_IPS: "10.0.0.2;10.0.0.3"}
        - pidfile: /run/rusty-rail/rusty_rail.pid
        - log: /var/log/rusty-rail/rusty_rail.log
        - ready: {log: "running; SIGINT or SIGTERM stops"}

Running with the same arguments, environment and directory is no change; a
different one restarts it, and so does a ``watch`` that fires.
"""


def __virtual__():
    if "rr_daemon.status" in __salt__:
        return "rr_daemon"
    return (False, "rr_daemon: the rr_daemon execution module is not loaded")


def _spec(args, env, cwd, files=None):
    spec = {
        "args": [str(arg) for arg in args],
        "env": {str(key): str(value) for key, value in (env or {}).items()},
        "cwd": cwd,
    }
    # The files' contents count as part of what runs: a changed
    # configuration file restarts the process like a changed argument.
    spec["files"] = __salt__["rr_daemon.digest"](files) if files else None
    return spec


def running(name, args, pidfile, log, env=None, cwd="/", ready=None, timeout=20, files=None):
    """
    ``args`` runs, started detached with ``env`` in ``cwd`` (output to
    ``log``) when it does not, and restarted when it runs with other
    arguments, environment or directory, or when one of ``files`` (its
    configuration) changed since it started. ``ready`` (``{log: TEXT}``,
    ``{tcp: PORT}``, ``{path: P}``) is awaited for ``timeout`` seconds.
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    spec = _spec(args, env, cwd, files)
    current = __salt__["rr_daemon.status"](pidfile)
    if current and current["spec"] == spec:
        ret["comment"] = "{} runs (pid {})".format(name, current["pid"])
        return ret
    action = "restarted" if current else "started"
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = "{} would be {}".format(name, action)
        ret["changes"] = {action: name}
        return ret
    try:
        if current:
            __salt__["rr_daemon.stop"](pidfile)
        pid = __salt__["rr_daemon.start"](
            spec["args"], pidfile, log, spec["env"], cwd, ready, timeout, files
        )
    except Exception as error:  # pylint: disable=broad-except
        ret["result"] = False
        ret["comment"] = "{} could not be {}: {}".format(name, action, error)
        return ret
    ret["changes"] = {action: pid}
    ret["comment"] = "{} {} (pid {})".format(name, action, pid)
    return ret


def dead(name, pidfile):
    """Nothing runs from ``pidfile``: the process it names is stopped."""
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    current = __salt__["rr_daemon.status"](pidfile)
    if not current:
        ret["comment"] = "{} is not running".format(name)
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = "{} would be stopped".format(name)
        ret["changes"] = {"stopped": current["pid"]}
        return ret
    __salt__["rr_daemon.stop"](pidfile)
    ret["changes"] = {"stopped": current["pid"]}
    ret["comment"] = "{} stopped".format(name)
    return ret


def mod_watch(name, sfun=None, **kwargs):
    """A ``watch`` on ``running`` restarts the process."""
    if sfun != "running":
        return {"name": name, "changes": {}, "result": True,
                "comment": "watch does nothing for rr_daemon.{}".format(sfun)}
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = "{} would be restarted".format(name)
        ret["changes"] = {"restarted": name}
        return ret
    spec = _spec(kwargs["args"], kwargs.get("env"), kwargs.get("cwd", "/"), kwargs.get("files"))
    try:
        __salt__["rr_daemon.stop"](kwargs["pidfile"])
        pid = __salt__["rr_daemon.start"](
            spec["args"], kwargs["pidfile"], kwargs["log"], spec["env"], spec["cwd"],
            kwargs.get("ready"), kwargs.get("timeout", 20), kwargs.get("files"),
        )
    except Exception as error:  # pylint: disable=broad-except
        ret["result"] = False
        ret["comment"] = "{} could not be restarted: {}".format(name, error)
        return ret
    ret["changes"] = {"restarted": pid}
    ret["comment"] = "{} restarted (pid {})".format(name, pid)
    return ret
