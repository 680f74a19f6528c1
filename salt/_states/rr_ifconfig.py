"""
FreeBSD interfaces, live, through ``ifconfig(8)`` (the ``rr_ifconfig``
execution module). ``rc.conf`` lines (``rr_sysrc``) make the same settings
survive a reboot; these states apply them now.

.. code-block:: yaml

    gre1:
      rr_ifconfig.gre:
        - local: 192.168.137.31
        - remote: 192.168.137.21
        - address: 172.16.0.2
        - peer: 172.16.0.1

    10.1.0.1:
      rr_ifconfig.alias:
        - iface: lo0

    vtnet0:
      rr_ifconfig.offloads_off:
        - words: [rxcsum, txcsum, tso, lro]
"""


def __virtual__():
    if "rr_ifconfig.show" in __salt__:
        return "rr_ifconfig"
    return (False, "rr_ifconfig: the rr_ifconfig execution module is not loaded (FreeBSD only)")


def _ret(name):
    return {"name": name, "changes": {}, "result": True, "comment": ""}


def _apply(ret, changes, steps, done, would):
    """Reports ``changes`` (none: nothing to do), or runs ``steps`` unless testing."""
    if not changes:
        return ret
    ret["changes"] = changes
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = would
        return ret
    try:
        for step in steps:
            step()
    except Exception as error:  # pylint: disable=broad-except
        ret["changes"] = {}
        ret["result"] = False
        ret["comment"] = str(error)
        return ret
    ret["comment"] = done
    return ret


def gre(name, local, remote, address, peer):
    """The ``gre(4)`` interface ``name`` exists, up, tunnelling ``local`` -> ``remote``, inner ``address`` -> ``peer``."""
    ret = _ret(name)
    shown = __salt__["rr_ifconfig.show"](name)
    changes, steps = {}, []
    if shown is None:
        changes["created"] = name
        steps.append(lambda: __salt__["rr_ifconfig.create"](name))
        shown = {"flags": [], "options": [], "tunnel": None, "inet": []}
    if shown["tunnel"] != [local, remote]:
        changes["tunnel"] = {"old": shown["tunnel"], "new": [local, remote]}
        steps.append(lambda: __salt__["rr_ifconfig.set_tunnel"](name, local, remote))
    if not any(inet["address"] == address and inet["peer"] == peer for inet in shown["inet"]):
        changes["inet"] = "{} --> {}".format(address, peer)
        steps.append(lambda: __salt__["rr_ifconfig.add_inet"](name, address, peer))
    if "UP" not in shown["flags"]:
        changes["up"] = True
        steps.append(lambda: __salt__["rr_ifconfig.up"](name))
    ret["comment"] = "{} tunnels {} -> {}".format(name, local, remote)
    return _apply(ret, changes, steps, ret["comment"] + " now",
                  "{} would be set to tunnel {} -> {}".format(name, local, remote))


def alias(name, iface="lo0", netmask="0xffffffff"):
    """IPv4 address ``name`` is on ``iface`` (the loopback by default)."""
    ret = _ret(name)
    shown = __salt__["rr_ifconfig.show"](iface)
    if shown is None:
        ret["result"] = False
        ret["comment"] = "no interface {}".format(iface)
        return ret
    ret["comment"] = "{} is on {}".format(name, iface)
    if any(inet["address"] == name for inet in shown["inet"]):
        return ret
    return _apply(ret, {"added": name},
                  [lambda: __salt__["rr_ifconfig.add_inet"](iface, name, None, netmask)],
                  "{} added to {}".format(name, iface), "{} would be added to {}".format(name, iface))


def offloads_off(name, words=("rxcsum", "txcsum", "tso", "lro")):
    """The offloads ``words`` are off on interface ``name``."""
    ret = _ret(name)
    try:
        on = __salt__["rr_ifconfig.options_on"](name, list(words))
    except Exception as error:  # pylint: disable=broad-except
        ret["result"] = False
        ret["comment"] = str(error)
        return ret
    ret["comment"] = "{}: {} off".format(name, ", ".join(words))
    if not on:
        return ret
    return _apply(ret, {"off": on}, [lambda: __salt__["rr_ifconfig.clear_options"](name, on)],
                  "{}: {} turned off".format(name, ", ".join(on)),
                  "{}: {} would be turned off".format(name, ", ".join(on)))
