"""
Network configuration of the minion's own network namespace (Linux).

Salt's built-ins configure a whole machine: ``sysctl.present`` persists to
``/etc/sysctl.d``, ``network.managed`` writes ``/etc/network/interfaces``.
A minion that runs inside a network namespace (the testbed's labs) shares
the machine's files but not its network, so these functions act on the
namespace the minion runs in, live, through iproute2 and ``/proc/sys``, and
refuse what would reach past it: a sysctl outside ``net.*`` from a
namespace other than the machine's own.

The states in ``_states/rr_net.py`` are built on these.
"""

import json
import os
import re

__virtualname__ = "rr_net"

NETNS_DIR = "/run/netns"
PROC_SYS = "/proc/sys"


def __virtual__():
    if __grains__.get("kernel") == "Linux":
        return __virtualname__
    return (False, "rr_net: Linux only (iproute2, /proc/sys)")


class CommandError(Exception):
    """A command failed; its message names the command and what it said."""


def _run(args):
    result = __salt__["cmd.run_all"](args, python_shell=False, ignore_retcode=True)
    if result["retcode"] != 0:
        raise CommandError(
            "`{}` failed ({}): {}".format(
                " ".join(args), result["retcode"], (result.get("stderr") or "").strip()
            )
        )
    return result.get("stdout") or ""


def _ip_json(args):
    text = _run(["ip", "-j"] + args)
    return json.loads(text) if text.strip() else []


def _same_file(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def netns():
    """
    The name of the network namespace the minion runs in (as ``ip netns``
    names it), or ``""`` in the machine's own (that of pid 1).

    .. code-block:: bash

        salt '*' rr_net.netns
    """
    own = "/proc/self/ns/net"
    if _same_file(own, "/proc/1/ns/net"):
        return ""
    try:
        names = sorted(os.listdir(NETNS_DIR))
    except OSError:
        names = []
    for name in names:
        if _same_file(own, os.path.join(NETNS_DIR, name)):
            return name
    return "(unnamed)"


def in_namespace():
    """True when the minion runs in a network namespace other than the machine's."""
    return netns() != ""


def addresses(dev):
    """The IPv4 addresses on ``dev`` as ``ADDRESS/LEN`` strings."""
    found = []
    for link in _ip_json(["-4", "addr", "show", "dev", dev]):
        for info in link.get("addr_info", []):
            found.append("{}/{}".format(info["local"], info["prefixlen"]))
    return found


def add_address(address, dev, peer=None):
    """Adds ``address`` (``A`` means ``A/32``) to ``dev``, point-to-point to ``peer`` if given."""
    if "/" not in address:
        address += "/32"
    args = ["ip", "addr", "add", address]
    if peer:
        args += ["peer", peer]
    _run(args + ["dev", dev])
    return True


def link_exists(dev):
    """True when the interface ``dev`` exists in the minion's namespace."""
    result = __salt__["cmd.run_all"](
        ["ip", "link", "show", "dev", dev], python_shell=False, ignore_retcode=True
    )
    return result["retcode"] == 0


def route(dest):
    """
    The route to ``dest`` (``A/LEN``, ``A`` or ``default``) in the main
    table, as a dict: ``dst``, ``gateway``, ``dev``, ``prefsrc``,
    ``nexthops`` (a list of ``{gateway, dev}``); ``None`` without one.
    """
    if dest != "default" and "/" not in dest:
        dest += "/32"
    routes = _ip_json(["-4", "route", "show", "exact", dest])
    if not routes:
        return None
    found = routes[0]
    return {
        "dst": found.get("dst"),
        "gateway": found.get("gateway"),
        "dev": found.get("dev"),
        "prefsrc": found.get("prefsrc"),
        "nexthops": [
            {"gateway": hop.get("gateway"), "dev": hop.get("dev")}
            for hop in found.get("nexthops", [])
        ],
    }


def route_differences(dest, via=None, dev=None, src=None, nexthops=None):
    """
    What differs between the route to ``dest`` and the one asked for, as a
    list of ``field: have -> want`` (empty when it is as asked).
    """
    have = route(dest)
    if have is None:
        return ["route: none -> present"]
    wanted = {"gateway": via, "dev": dev, "prefsrc": src}
    differences = [
        "{}: {} -> {}".format(field, have[field], want)
        for field, want in wanted.items()
        if want is not None and have[field] != want
    ]
    if nexthops is not None:
        have_hops = sorted((hop["gateway"] or "", hop["dev"] or "") for hop in have["nexthops"])
        want_hops = sorted((hop.get("via") or "", hop.get("dev") or "") for hop in nexthops)
        if have_hops != want_hops:
            differences.append("nexthops: {} -> {}".format(have_hops, want_hops))
    return differences


def replace_route(dest, via=None, dev=None, src=None, nexthops=None):
    """``ip route replace`` for ``dest`` with a gateway, device, preferred
    source and/or ECMP next hops (``[{via, dev}]``)."""
    args = ["ip", "route", "replace", dest]
    if nexthops:
        for hop in nexthops:
            args.append("nexthop")
            if hop.get("via"):
                args += ["via", hop["via"]]
            if hop.get("dev"):
                args += ["dev", hop["dev"]]
    else:
        if via:
            args += ["via", via]
        if dev:
            args += ["dev", dev]
    if src:
        args += ["src", src]
    _run(args)
    return True


def _sysctl_path(name):
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name) or ".." in name:
        raise CommandError("`{}` is not a sysctl name".format(name))
    return os.path.join(PROC_SYS, *name.split("."))


def sysctl_scoped(name):
    """
    Whether setting ``name`` stays inside the minion's network namespace:
    any sysctl in the machine's own namespace, only ``net.*`` in another.
    """
    return not in_namespace() or name.startswith("net.")


def sysctl_get(name):
    """The value of sysctl ``name`` as the kernel shows it (whitespace-joined)."""
    with open(_sysctl_path(name), encoding="utf-8") as handle:
        return " ".join(handle.read().split())


def sysctl_set(name, value):
    """Writes ``value`` to sysctl ``name`` (refused when not namespace-scoped)."""
    if not sysctl_scoped(name):
        raise CommandError(
            "refusing to set {} from network namespace {}: it is not per-namespace "
            "and would change the whole machine".format(name, netns())
        )
    with open(_sysctl_path(name), "w", encoding="utf-8") as handle:
        handle.write(str(value))
    return True


def kernel_gre():
    """True when the kernel has GRE devices (the ``ip_gre`` module, loaded or loadable)."""
    if os.path.isdir("/sys/module/ip_gre"):
        return True
    result = __salt__["cmd.run_all"](
        ["modprobe", "-n", "-q", "ip_gre"], python_shell=False, ignore_retcode=True
    )
    return result["retcode"] == 0


def gre_tunnel(name):
    """The GRE device ``name`` as ``{local, remote, ttl}``, or ``None``."""
    if not link_exists(name):
        return None
    links = _ip_json(["-d", "link", "show", "dev", name])
    info = (links[0].get("linkinfo") or {}) if links else {}
    if info.get("info_kind") != "gre":
        return {"kind": info.get("info_kind")}
    data = info.get("info_data", {})
    return {"kind": "gre", "local": data.get("local"), "remote": data.get("remote"),
            "ttl": data.get("ttl")}


def set_gre_tunnel(name, local, remote, ttl=64):
    """Creates (or changes) GRE device ``name`` from ``local`` to ``remote`` and sets it up."""
    verb = "change" if link_exists(name) else "add"
    _run(["ip", "tunnel", verb, name, "mode", "gre", "local", local, "remote", remote,
          "ttl", str(ttl)])
    _run(["ip", "link", "set", "dev", name, "up"])
    return True


def offloads(dev):
    """
    ``ethtool -k DEV`` as ``{feature: {"on": bool, "fixed": bool}}``, with
    ethtool's names (``generic-receive-offload``, ``large-receive-offload``, ...).
    """
    features = {}
    for line in _run(["ethtool", "-k", dev]).splitlines()[1:]:
        match = re.match(r"^\s*([a-z0-9-]+):\s+(on|off)(\s+\[fixed\])?", line)
        if match:
            features[match.group(1)] = {
                "on": match.group(2) == "on",
                "fixed": match.group(3) is not None,
            }
    return features


def set_offloads(dev, wanted):
    """``ethtool -K DEV name on|off ...`` for ``wanted`` (``{short name: bool}``)."""
    args = ["ethtool", "-K", dev]
    for feature, on in sorted(wanted.items()):
        args += [feature, "on" if on else "off"]
    _run(args)
    return True
