"""
FreeBSD interfaces through ``ifconfig(8)``, live: cloned GRE interfaces
with their tunnel and point-to-point addresses, aliases, and offload
options. ``rc.conf`` keeps the same settings for the next boot (the
``rr_sysrc`` states); these apply them now, so no reboot is needed.
"""

import re

__virtualname__ = "rr_ifconfig"

# ifconfig's option flags per offload word it accepts (``-tso`` clears both TSO flags).
OPTION_FLAGS = {
    "rxcsum": ["RXCSUM"],
    "txcsum": ["TXCSUM"],
    "rxcsum6": ["RXCSUM_IPV6"],
    "txcsum6": ["TXCSUM_IPV6"],
    "tso": ["TSO4", "TSO6"],
    "lro": ["LRO"],
    "vlanhwtso": ["VLAN_HWTSO"],
}


def __virtual__():
    if __grains__.get("kernel") == "FreeBSD":
        return __virtualname__
    return (False, "rr_ifconfig: FreeBSD only (ifconfig)")


def _ifconfig(args, check=True):
    result = __salt__["cmd.run_all"](["ifconfig"] + args, python_shell=False, ignore_retcode=True)
    if check and result["retcode"] != 0:
        raise RuntimeError(
            "`ifconfig {}` failed ({}): {}".format(
                " ".join(args), result["retcode"], (result.get("stderr") or "").strip()
            )
        )
    return result


def parse(text):
    """What ``ifconfig IFACE`` printed, as ``{flags, options, tunnel, inet}``."""
    shown = {"flags": [], "options": [], "tunnel": None, "inet": []}
    for line in text.splitlines():
        line = line.strip()
        flags = re.search(r"\bflags=[0-9a-f]+<([^>]*)>", line)
        if flags:
            shown["flags"] = [flag for flag in flags.group(1).split(",") if flag]
            continue
        options = re.match(r"options=[0-9a-f]+<([^>]*)>", line)
        if options:
            shown["options"] = [flag for flag in options.group(1).split(",") if flag]
            continue
        tunnel = re.match(r"tunnel inet (\S+) --> (\S+)", line)
        if tunnel:
            shown["tunnel"] = [tunnel.group(1), tunnel.group(2)]
            continue
        inet = re.match(r"inet (\S+)(?: --> (\S+))? netmask (\S+)", line)
        if inet:
            shown["inet"].append(
                {"address": inet.group(1), "peer": inet.group(2), "netmask": inet.group(3)}
            )
    return shown


def show(iface):
    """Interface ``iface`` as :func:`parse` reads it, or ``None`` when it does not exist."""
    result = _ifconfig([iface], check=False)
    if result["retcode"] != 0:
        return None
    return parse(result.get("stdout") or "")


def create(iface):
    """Creates the cloned interface ``iface`` (``gre0``, ...)."""
    _ifconfig([iface, "create"])
    return True


def set_tunnel(iface, local, remote):
    """Sets the outer addresses of tunnel interface ``iface``."""
    _ifconfig([iface, "tunnel", local, remote])
    return True


def add_inet(iface, address, peer=None, netmask="0xffffffff"):
    """Adds IPv4 ``address`` (point-to-point toward ``peer`` if given) as an alias of ``iface``."""
    args = [iface, "inet", address] + ([peer] if peer else []) + ["netmask", netmask, "alias"]
    _ifconfig(args)
    return True


def up(iface):
    """Sets ``iface`` up."""
    _ifconfig([iface, "up"])
    return True


def options_on(iface, words):
    """Which of the offload ``words`` (``rxcsum``, ``tso``, ...) are on for ``iface``."""
    shown = show(iface) or {"options": []}
    return [word for word in words if set(OPTION_FLAGS[word]) & set(shown["options"])]


def clear_options(iface, words):
    """Turns the offload ``words`` off on ``iface`` (``ifconfig IFACE -rxcsum -tso ...``)."""
    _ifconfig([iface] + ["-" + word for word in words])
    return True
