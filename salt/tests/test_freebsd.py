"""rr_sysrc and rr_ifconfig: FreeBSD's rc.conf, loader.conf and interfaces,
against a small simulation of sysrc(8) and ifconfig(8)."""

import re
import unittest

from support import Commands, load

GRE_UP = """gre0: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> metric 0 mtu 1476
\toptions=80000<LINKSTATE>
\ttunnel inet 192.168.137.31 --> 192.168.137.21
\tinet 172.16.0.2 --> 172.16.0.1 netmask 0xffffffff
\tgroups: gre
\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>
"""

VTNET = """vtnet0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=4c07bb<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,JUMBO_MTU,VLAN_HWCSUM,TSO4,TSO6,LRO,VLAN_HWTSO,LINKSTATE,TXCSUM_IPV6>
\tether 58:9c:fc:00:00:01
\tinet 192.168.137.21 netmask 0xffffff00 broadcast 192.168.137.255
"""


class Sysrc:
    """sysrc(8) over in-memory files: ``-f FILE``, ``-ie NAME``, ``NAME=VALUE``."""

    def __init__(self, files):
        self.files = files

    def __call__(self, args):
        assert args[0] == "sysrc", args
        args = args[1:]
        file = "/etc/rc.conf"
        if args[:1] == ["-f"]:
            file, args = args[1], args[2:]
        values = self.files.setdefault(file, {})
        if args[0] == "-ie":
            name = args[1]
            return (0, '{}="{}"\n'.format(name, values[name]) if name in values else "")
        name, value = args[0].split("=", 1)
        values[name] = value
        return (0, "{}: -> {}\n".format(name, value))


def sysrc_loaded(files, test=False):
    commands = Commands(Sysrc(files))
    module = load("_modules", "rr_sysrc", grains={"kernel": "FreeBSD"})
    salt = {"cmd.run_all": commands}
    module.__salt__ = salt
    for name in ("get", "words", "missing_words", "add_words"):
        salt["rr_sysrc." + name] = getattr(module, name)
    salt["rr_sysrc.set"] = module.set_
    return load("_states", "rr_sysrc", salt=salt, opts={"test": test}), commands


class RcConf(unittest.TestCase):
    def test_a_value_is_set_once(self):
        files = {}
        state, _ = sysrc_loaded(files)
        ret = state.managed("rusty_rail_enable", "YES")
        self.assertEqual(ret["changes"], {"rusty_rail_enable": {"old": None, "new": "YES"}})
        self.assertEqual(files["/etc/rc.conf"]["rusty_rail_enable"], "YES")
        self.assertEqual(state.managed("rusty_rail_enable", "YES")["changes"], {})

    def test_loader_conf_is_another_file(self):
        files = {}
        state, commands = sysrc_loaded(files)
        state.managed("if_gre_load", "YES", file="/boot/loader.conf")
        self.assertEqual(files, {"/boot/loader.conf": {"if_gre_load": "YES"}})
        self.assertIn(["sysrc", "-f", "/boot/loader.conf", "if_gre_load=YES"], commands.ran)

    def test_a_list_keeps_the_words_others_put_there(self):
        files = {"/etc/rc.conf": {"cloned_interfaces": "bridge0 tap0"}}
        state, _ = sysrc_loaded(files)
        ret = state.listed("cloned_interfaces", ["gre0", "gre1"])
        self.assertEqual(ret["changes"], {"added": ["gre0", "gre1"]})
        self.assertEqual(files["/etc/rc.conf"]["cloned_interfaces"], "bridge0 tap0 gre0 gre1")
        self.assertEqual(state.listed("cloned_interfaces", ["gre1"])["changes"], {})

    def test_test_mode_writes_nothing(self):
        files = {}
        state, _ = sysrc_loaded(files, test=True)
        ret = state.listed("static_routes", ["to_client_1"])
        self.assertIsNone(ret["result"])
        self.assertEqual(files.get("/etc/rc.conf", {}), {})


class Ifconfig:
    """ifconfig(8) over in-memory interfaces: show, create, tunnel, inet alias, up, -option."""

    def __init__(self, shown):
        self.shown = shown

    def __call__(self, args):
        assert args[0] == "ifconfig", args
        iface, rest = args[1], args[2:]
        if not rest:
            return (0, self.shown[iface]) if iface in self.shown else (1, "")
        if rest == ["create"]:
            self.shown[iface] = "{}: flags=8010<POINTOPOINT,MULTICAST> metric 0 mtu 1476\n".format(iface)
        elif rest[0] == "tunnel":
            self.shown[iface] += "\ttunnel inet {} --> {}\n".format(rest[1], rest[2])
        elif rest[0] == "inet":
            peer = " --> " + rest[2] if rest[2] != "netmask" else ""
            self.shown[iface] += "\tinet {}{} netmask 0xffffffff\n".format(rest[1], peer)
        elif rest == ["up"]:
            self.shown[iface] = self.shown[iface].replace("<POINTOPOINT", "<UP,POINTOPOINT")
        else:
            for word in rest:
                assert word.startswith("-"), rest
                flags = {"-rxcsum": "RXCSUM", "-txcsum": "TXCSUM", "-tso": "TSO[46]", "-lro": "LRO"}
                self.shown[iface] = re.sub(r"\b{},?".format(flags[word]), "", self.shown[iface])
        return (0, "")


def ifconfig_loaded(shown, test=False):
    commands = Commands(Ifconfig(shown))
    module = load("_modules", "rr_ifconfig", grains={"kernel": "FreeBSD"})
    salt = {"cmd.run_all": commands}
    module.__salt__ = salt
    for name in ("show", "create", "set_tunnel", "add_inet", "up", "options_on", "clear_options"):
        salt["rr_ifconfig." + name] = getattr(module, name)
    return module, load("_states", "rr_ifconfig", salt=salt, opts={"test": test}), commands


class Interfaces(unittest.TestCase):
    def test_ifconfig_output_is_read(self):
        module, _, _ = ifconfig_loaded({})
        shown = module.parse(GRE_UP)
        self.assertEqual(shown["tunnel"], ["192.168.137.31", "192.168.137.21"])
        self.assertEqual(shown["inet"], [{"address": "172.16.0.2", "peer": "172.16.0.1",
                                          "netmask": "0xffffffff"}])
        self.assertIn("UP", shown["flags"])
        self.assertIn("TSO4", module.parse(VTNET)["options"])

    def test_a_gre_interface_is_made_then_left_as_it_is(self):
        shown = {}
        _, state, commands = ifconfig_loaded(shown)
        args = ("gre0", "192.168.137.31", "192.168.137.21", "172.16.0.2", "172.16.0.1")
        ret = state.gre(*args)
        self.assertTrue(ret["result"], ret)
        self.assertEqual(sorted(ret["changes"]), ["created", "inet", "tunnel", "up"])
        self.assertEqual(commands.ran[1:], [
            ["ifconfig", "gre0", "create"],
            ["ifconfig", "gre0", "tunnel", "192.168.137.31", "192.168.137.21"],
            ["ifconfig", "gre0", "inet", "172.16.0.2", "172.16.0.1", "netmask", "0xffffffff", "alias"],
            ["ifconfig", "gre0", "up"],
        ])
        self.assertEqual(state.gre(*args)["changes"], {})

    def test_a_configured_gre_interface_is_no_change(self):
        _, state, commands = ifconfig_loaded({"gre0": GRE_UP})
        ret = state.gre("gre0", "192.168.137.31", "192.168.137.21", "172.16.0.2", "172.16.0.1")
        self.assertEqual((ret["result"], ret["changes"]), (True, {}))
        self.assertEqual(len(commands.ran), 1)

    def test_an_alias_goes_on_the_loopback_once(self):
        shown = {"lo0": "lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> metric 0 mtu 16384\n"
                        "\tinet 127.0.0.1 netmask 0xff000000\n"}
        _, state, _ = ifconfig_loaded(shown)
        self.assertEqual(state.alias("10.1.0.1")["changes"], {"added": "10.1.0.1"})
        self.assertEqual(state.alias("10.1.0.1")["changes"], {})

    def test_offloads_are_turned_off_once(self):
        shown = {"vtnet0": VTNET}
        _, state, commands = ifconfig_loaded(shown)
        ret = state.offloads_off("vtnet0", ["rxcsum", "txcsum", "tso", "lro"])
        self.assertEqual(ret["changes"], {"off": ["rxcsum", "txcsum", "tso", "lro"]})
        self.assertIn(["ifconfig", "vtnet0", "-rxcsum", "-txcsum", "-tso", "-lro"], commands.ran)
        self.assertEqual(state.offloads_off("vtnet0", ["rxcsum", "txcsum", "tso", "lro"])["changes"], {})


class Grains(unittest.TestCase):
    def test_the_grains_are_there_and_typed(self):
        grains = load("_grains", "rusty_rail").rusty_rail()
        self.assertEqual(sorted(grains), ["rr_kernel_gre", "rr_netmap", "rr_netns", "rr_systemd"])
        self.assertIsInstance(grains["rr_netns"], str)
        for name in ("rr_kernel_gre", "rr_netmap", "rr_systemd"):
            self.assertIsInstance(grains[name], bool)


if __name__ == "__main__":
    unittest.main()
