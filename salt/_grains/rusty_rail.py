"""
What a testbed machine offers the states, read from the machine itself:

- ``rr_netns``: the network namespace the minion runs in (``""`` in the
  machine's own): the labs' minions run in one each;
- ``rr_systemd``: systemd runs as init and can take units;
- ``rr_kernel_gre``: the kernel has GRE devices (Linux ``ip_gre``; FreeBSD
  ``if_gre``, built in or loadable);
- ``rr_netmap``: ``/dev/netmap`` exists (the balancer's netmap backend).
"""

import os
import subprocess


def _same_file(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _netns():
    own = "/proc/self/ns/net"
    if not os.path.exists(own) or _same_file(own, "/proc/1/ns/net"):
        return ""
    try:
        names = sorted(os.listdir("/run/netns"))
    except OSError:
        names = []
    for name in names:
        if _same_file(own, os.path.join("/run/netns", name)):
            return name
    return "(unnamed)"


def _succeeds(args):
    try:
        return subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              check=False).returncode == 0
    except OSError:
        return False


def _kernel_gre():
    if os.path.isdir("/sys/module/ip_gre"):
        return True
    if os.path.exists("/boot/kernel/if_gre.ko"):
        return True
    if _succeeds(["sysctl", "-n", "net.link.gre"]):
        return True
    return _succeeds(["modprobe", "-n", "-q", "ip_gre"])


def rusty_rail():
    """The ``rr_*`` grains."""
    netns = _netns()
    return {
        "rr_netns": netns,
        "rr_systemd": os.path.isdir("/run/systemd/system") and netns == "",
        "rr_kernel_gre": _kernel_gre(),
        "rr_netmap": os.path.exists("/dev/netmap"),
    }
