"""
States for the network of the minion's own namespace (Linux), built on the
``rr_net`` execution module: addresses, routes, per-namespace sysctls, GRE
devices and NIC offloads, applied live and idempotently.

.. code-block:: yaml

    service-address:
      rr_net.address:
        - name: 10.1.0.1/32
        - dev: lo

    rp-filter-off:
      rr_net.sysctl:
        - name: net.ipv4.conf.all.rp_filter
        - value: 0
        - config: /etc/sysctl.d/60-rusty-rail.conf
"""

import os

# ethtool -K's short names and the long ones ethtool -k prints.
OFFLOAD_NAMES = {
    "gro": "generic-receive-offload",
    "lro": "large-receive-offload",
    "tso": "tcp-segmentation-offload",
    "gso": "generic-segmentation-offload",
    "rx": "rx-checksumming",
    "tx": "tx-checksumming",
}


def __virtual__():
    if "rr_net.netns" in __salt__:
        return "rr_net"
    return (False, "rr_net: the rr_net execution module is not loaded (Linux only)")


def _ret(name):
    return {"name": name, "changes": {}, "result": True, "comment": ""}


def _fail(ret, error):
    ret["result"] = False
    ret["comment"] = str(error)
    return ret


def address(name, dev="lo"):
    """The IPv4 address ``name`` (``A`` or ``A/LEN``; ``A`` is ``A/32``) is on ``dev``."""
    ret = _ret(name)
    wanted = name if "/" in name else name + "/32"
    try:
        if wanted in __salt__["rr_net.addresses"](dev):
            ret["comment"] = "{} is on {}".format(wanted, dev)
            return ret
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = "{} would be added to {}".format(wanted, dev)
            ret["changes"] = {"added": wanted}
            return ret
        __salt__["rr_net.add_address"](wanted, dev)
    except Exception as error:  # pylint: disable=broad-except
        return _fail(ret, error)
    ret["changes"] = {"added": wanted}
    ret["comment"] = "{} added to {}".format(wanted, dev)
    return ret


def route(name, via=None, dev=None, src=None, nexthops=None):
    """
    The main table routes ``name`` (``A/LEN``, ``A`` or ``default``) through
    ``via`` and/or ``dev`` with preferred source ``src``, or over ECMP
    ``nexthops`` (a list of ``{via, dev}``); replaced when it differs.
    """
    ret = _ret(name)
    try:
        differences = __salt__["rr_net.route_differences"](name, via, dev, src, nexthops)
        if not differences:
            ret["comment"] = "the route to {} is as asked".format(name)
            return ret
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = "the route to {} would be replaced".format(name)
            ret["changes"] = {"route": differences}
            return ret
        __salt__["rr_net.replace_route"](name, via, dev, src, nexthops)
    except Exception as error:  # pylint: disable=broad-except
        return _fail(ret, error)
    ret["changes"] = {"route": differences}
    ret["comment"] = "the route to {} was replaced".format(name)
    return ret


def _persist(config, name, value):
    """Keeps ``name = value`` in the sysctl.d-style file ``config``; True when it changed."""
    line = "{} = {}\n".format(name, value)
    try:
        with open(config, encoding="utf-8") as handle:
            lines = handle.readlines()
    except FileNotFoundError:
        lines = []
    kept = [existing for existing in lines if existing.split("=")[0].strip() != name]
    if line in lines and len(kept) == len(lines) - 1:
        return False
    os.makedirs(os.path.dirname(config) or ".", exist_ok=True)
    temporary = config + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(kept + [line])
    os.replace(temporary, config)
    return True


def sysctl(name, value, config=None):
    """
    Sysctl ``name`` has ``value`` in the minion's namespace, written live to
    ``/proc/sys``; with ``config``, also kept in that file (sysctl.d syntax)
    so that a boot applies it again. From a namespace other than the
    machine's, only ``net.*`` (per-namespace) sysctls are accepted.
    """
    ret = _ret(name)
    value = " ".join(str(value).split())
    try:
        if not __salt__["rr_net.sysctl_scoped"](name):
            return _fail(
                ret,
                "{} is not per network namespace: setting it from {} would change "
                "the whole machine".format(name, __salt__["rr_net.netns"]()),
            )
        current = __salt__["rr_net.sysctl_get"](name)
        stale_config = False
        if config:
            try:
                with open(config, encoding="utf-8") as handle:
                    stale_config = "{} = {}\n".format(name, value) not in handle.readlines()
            except FileNotFoundError:
                stale_config = True
        if current == value and not stale_config:
            ret["comment"] = "{} is {}".format(name, value)
            return ret
        changes = {}
        if current != value:
            changes["live"] = {"old": current, "new": value}
        if stale_config:
            changes["config"] = config
        if __opts__["test"]:
            ret["result"] = None
            ret["changes"] = changes
            ret["comment"] = "{} would be set to {}".format(name, value)
            return ret
        if current != value:
            __salt__["rr_net.sysctl_set"](name, value)
        if stale_config:
            _persist(config, name, value)
    except Exception as error:  # pylint: disable=broad-except
        return _fail(ret, error)
    ret["changes"] = changes
    ret["comment"] = "{} set to {}".format(name, value)
    return ret


def gre_tunnel(name, local, remote, address=None, peer=None, ttl=64):
    """
    A kernel GRE device ``name`` from ``local`` to ``remote``, up, with the
    point-to-point inner ``address`` toward ``peer`` when given.
    """
    ret = _ret(name)
    try:
        have = __salt__["rr_net.gre_tunnel"](name)
        wanted = {"kind": "gre", "local": local, "remote": remote, "ttl": ttl}
        changes = {}
        if have != wanted:
            changes["tunnel"] = {"old": have, "new": wanted}
        inner = None
        if address:
            inner = address if "/" in address else address + "/32"
            if have is None or inner not in __salt__["rr_net.addresses"](name):
                changes["address"] = inner
        if not changes:
            ret["comment"] = "{} is a GRE device {} -> {}".format(name, local, remote)
            return ret
        if __opts__["test"]:
            ret["result"] = None
            ret["changes"] = changes
            ret["comment"] = "{} would be made a GRE device {} -> {}".format(name, local, remote)
            return ret
        if "tunnel" in changes:
            if have is not None and have.get("kind") != "gre":
                return _fail(ret, "{} exists and is a {} device, not GRE".format(name, have.get("kind")))
            __salt__["rr_net.set_gre_tunnel"](name, local, remote, ttl)
        if "address" in changes:
            __salt__["rr_net.add_address"](inner, name, peer)
    except Exception as error:  # pylint: disable=broad-except
        return _fail(ret, error)
    ret["changes"] = changes
    ret["comment"] = "{} is now a GRE device {} -> {}".format(name, local, remote)
    return ret


def offloads(name, **wanted):
    """
    Offloads of interface ``name`` as asked (``gro: False``, ``lro: False``,
    any of gro, lro, tso, gso, rx, tx); those the driver fixes in the wanted
    state, or cannot change at all, are left and reported.
    """
    ret = _ret(name)
    wanted = {key: bool(value) for key, value in wanted.items() if not key.startswith("__")}
    unknown = sorted(set(wanted) - set(OFFLOAD_NAMES))
    if unknown:
        return _fail(ret, "unknown offloads {} (known: {})".format(unknown, sorted(OFFLOAD_NAMES)))
    try:
        have = __salt__["rr_net.offloads"](name)
        change, fixed = {}, []
        for short, on in wanted.items():
            state = have.get(OFFLOAD_NAMES[short])
            if state is None or state["on"] == on:
                continue
            if state["fixed"]:
                fixed.append(short)
            else:
                change[short] = on
        if fixed:
            return _fail(ret, "{}: {} fixed by the driver, cannot be changed".format(name, fixed))
        if not change:
            ret["comment"] = "{}: offloads as asked".format(name)
            return ret
        changes = {short: "on" if on else "off" for short, on in change.items()}
        if __opts__["test"]:
            ret["result"] = None
            ret["changes"] = changes
            ret["comment"] = "{}: offloads would be changed".format(name)
            return ret
        __salt__["rr_net.set_offloads"](name, change)
    except Exception as error:  # pylint: disable=broad-except
        return _fail(ret, error)
    ret["changes"] = changes
    ret["comment"] = "{}: offloads changed".format(name)
    return ret
