"""rr_net: the network of the minion's own namespace, live and idempotent."""

import json
import os
import tempfile
import unittest

from support import Commands, load

ADDR_LO = [{"ifname": "lo", "addr_info": [{"local": "127.0.0.1", "prefixlen": 8}]}]
ADDR_LO_SERVICE = [{"ifname": "lo", "addr_info": [
    {"local": "127.0.0.1", "prefixlen": 8}, {"local": "10.1.0.1", "prefixlen": 32}]}]

ETHTOOL = """Features for eth0:
rx-checksumming: on
tx-checksumming: on
tcp-segmentation-offload: on
generic-segmentation-offload: on
generic-receive-offload: on
large-receive-offload: off [fixed]
"""


def loaded(answer, test=False):
    commands = Commands(answer)
    module = load("_modules", "rr_net", grains={"kernel": "Linux"})
    salt = {"cmd.run_all": commands}
    module.__salt__ = salt
    for name in dir(module):
        if not name.startswith("_") and callable(getattr(module, name)) and name[0].islower():
            salt["rr_net." + name] = getattr(module, name)
    state = load("_states", "rr_net", salt=salt, opts={"test": test})
    return module, state, commands


class Addresses(unittest.TestCase):
    def test_a_missing_address_is_added_and_a_present_one_left(self):
        _, state, commands = loaded(lambda args: (0, json.dumps(ADDR_LO)))
        ret = state.address("10.1.0.1", dev="lo")
        self.assertTrue(ret["result"], ret)
        self.assertEqual(ret["changes"], {"added": "10.1.0.1/32"})
        self.assertIn(["ip", "addr", "add", "10.1.0.1/32", "dev", "lo"], commands.ran)

        _, state, commands = loaded(lambda args: (0, json.dumps(ADDR_LO_SERVICE)))
        ret = state.address("10.1.0.1/32", dev="lo")
        self.assertEqual((ret["result"], ret["changes"]), (True, {}))
        self.assertEqual(commands.changing("add"), [])

    def test_test_mode_changes_nothing(self):
        _, state, commands = loaded(lambda args: (0, json.dumps(ADDR_LO)), test=True)
        ret = state.address("10.1.0.1/32", dev="lo")
        self.assertIsNone(ret["result"])
        self.assertEqual(commands.changing("add"), [])

    def test_a_failing_command_fails_the_state_with_what_it_said(self):
        def answer(args):
            return (0, json.dumps(ADDR_LO)) if "show" in args else (2, "")
        _, state, _ = loaded(answer)
        ret = state.address("10.1.0.1/32", dev="lo")
        self.assertFalse(ret["result"])
        self.assertIn("ip addr add 10.1.0.1/32 dev lo", ret["comment"])


class Routes(unittest.TestCase):
    def route(self, **fields):
        return lambda args: (0, json.dumps([fields]) if fields else "[]")

    def test_a_route_with_the_asked_device_and_source_is_left(self):
        _, state, commands = loaded(self.route(dst="10.1.0.0/24", dev="rr-gre", prefsrc="10.0.0.1"))
        ret = state.route("10.1.0.0/24", dev="rr-gre", src="10.0.0.1")
        self.assertEqual((ret["result"], ret["changes"]), (True, {}))
        self.assertEqual(commands.changing("replace"), [])

    def test_a_route_without_the_source_is_replaced(self):
        _, state, commands = loaded(self.route(dst="10.1.0.0/24", dev="rr-gre"))
        ret = state.route("10.1.0.0/24", dev="rr-gre", src="10.0.0.1")
        self.assertTrue(ret["result"], ret)
        self.assertEqual(ret["changes"], {"route": ["prefsrc: None -> 10.0.0.1"]})
        self.assertIn(["ip", "route", "replace", "10.1.0.0/24", "dev", "rr-gre", "src", "10.0.0.1"],
                      commands.ran)

    def test_a_missing_route_is_added_through_its_gateway(self):
        _, state, commands = loaded(self.route())
        ret = state.route("10.0.0.1/32", via="192.168.137.11")
        self.assertEqual(ret["changes"], {"route": ["route: none -> present"]})
        self.assertIn(["ip", "route", "replace", "10.0.0.1/32", "via", "192.168.137.11"], commands.ran)

    def test_ecmp_next_hops_are_compared_as_a_set(self):
        hops = [{"dev": "rr-gre1"}, {"dev": "rr-gre0"}]
        _, state, _ = loaded(self.route(dst="10.1.0.0/24", nexthops=hops))
        ret = state.route("10.1.0.0/24", nexthops=[{"dev": "rr-gre0"}, {"dev": "rr-gre1"}])
        self.assertEqual(ret["changes"], {})
        _, state, commands = loaded(self.route(dst="10.1.0.0/24", nexthops=hops[:1]))
        ret = state.route("10.1.0.0/24", nexthops=[{"dev": "rr-gre0"}, {"dev": "rr-gre1"}])
        self.assertIn("nexthops", ret["changes"]["route"][0])
        self.assertIn(["ip", "route", "replace", "10.1.0.0/24", "nexthop", "dev", "rr-gre0",
                       "nexthop", "dev", "rr-gre1"], commands.ran)


class Sysctls(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.module, self.state, _ = loaded(lambda args: (0, ""))
        self.module.PROC_SYS = os.path.join(self.dir.name, "proc")
        os.makedirs(os.path.join(self.module.PROC_SYS, "net", "ipv4"))
        os.makedirs(os.path.join(self.module.PROC_SYS, "vm"))
        for name, value in (("net/ipv4/ip_forward", "0\n"), ("vm/swappiness", "60\n")):
            with open(os.path.join(self.module.PROC_SYS, name), "w", encoding="utf-8") as handle:
                handle.write(value)
        self.config = os.path.join(self.dir.name, "etc", "sysctl.d", "60-rusty-rail.conf")

    def value(self, name):
        with open(os.path.join(self.module.PROC_SYS, name), encoding="utf-8") as handle:
            return handle.read().strip()

    def test_a_sysctl_is_set_live_and_kept_and_a_second_run_changes_nothing(self):
        self.module.netns = lambda: "lab-lb-1"
        ret = self.state.sysctl("net.ipv4.ip_forward", 1, config=self.config)
        self.assertTrue(ret["result"], ret)
        self.assertEqual(ret["changes"]["live"], {"old": "0", "new": "1"})
        self.assertEqual(self.value("net/ipv4/ip_forward"), "1")
        with open(self.config, encoding="utf-8") as handle:
            self.assertEqual(handle.read(), "net.ipv4.ip_forward = 1\n")
        ret = self.state.sysctl("net.ipv4.ip_forward", 1, config=self.config)
        self.assertEqual((ret["result"], ret["changes"]), (True, {}))

    def test_a_kept_value_is_replaced_not_repeated(self):
        self.module.netns = lambda: ""
        self.state.sysctl("net.ipv4.ip_forward", 1, config=self.config)
        self.state.sysctl("net.ipv4.ip_forward", 0, config=self.config)
        with open(self.config, encoding="utf-8") as handle:
            self.assertEqual(handle.read(), "net.ipv4.ip_forward = 0\n")

    def test_a_machine_wide_sysctl_is_refused_inside_a_namespace(self):
        self.module.netns = lambda: "lab-lb-1"
        ret = self.state.sysctl("vm.swappiness", 10)
        self.assertFalse(ret["result"])
        self.assertIn("would change the whole machine", ret["comment"])
        self.assertEqual(self.value("vm/swappiness"), "60")

    def test_a_machine_wide_sysctl_is_set_on_the_machine_itself(self):
        self.module.netns = lambda: ""
        ret = self.state.sysctl("vm.swappiness", 10)
        self.assertTrue(ret["result"], ret)
        self.assertEqual(self.value("vm/swappiness"), "10")

    def test_names_cannot_climb_out_of_proc_sys(self):
        self.module.netns = lambda: ""
        ret = self.state.sysctl("net..ipv4", 1)
        self.assertFalse(ret["result"])


class Offloads(unittest.TestCase):
    def test_gro_is_turned_off_and_a_fixed_off_lro_left_alone(self):
        _, state, commands = loaded(lambda args: (0, ETHTOOL))
        ret = state.offloads("eth0", gro=False, lro=False)
        self.assertTrue(ret["result"], ret)
        self.assertEqual(ret["changes"], {"gro": "off"})
        self.assertIn(["ethtool", "-K", "eth0", "gro", "off"], commands.ran)

    def test_offloads_already_off_are_no_change(self):
        _, state, commands = loaded(lambda args: (0, ETHTOOL.replace("receive-offload: on", "receive-offload: off")))
        ret = state.offloads("eth0", gro=False, lro=False)
        self.assertEqual((ret["result"], ret["changes"]), (True, {}))
        self.assertEqual([args for args in commands.ran if "-K" in args], [])

    def test_a_fixed_offload_that_is_on_fails(self):
        _, state, _ = loaded(lambda args: (0, ETHTOOL.replace("off [fixed]", "on [fixed]")))
        ret = state.offloads("eth0", lro=False)
        self.assertFalse(ret["result"])
        self.assertIn("fixed", ret["comment"])


class GreTunnels(unittest.TestCase):
    def test_a_missing_tunnel_is_made_with_its_inner_addresses(self):
        def answer(args):
            if args[:3] == ["ip", "link", "show"]:
                return (1, "")
            return (0, "[]")
        _, state, commands = loaded(answer)
        ret = state.gre_tunnel("rr-gre0", "192.168.137.31", "192.168.137.21",
                               address="172.16.0.2", peer="172.16.0.1")
        self.assertTrue(ret["result"], ret)
        self.assertIn(["ip", "tunnel", "add", "rr-gre0", "mode", "gre", "local", "192.168.137.31",
                       "remote", "192.168.137.21", "ttl", "64"], commands.ran)
        self.assertIn(["ip", "addr", "add", "172.16.0.2/32", "peer", "172.16.0.1", "dev", "rr-gre0"],
                      commands.ran)

    def test_a_tunnel_as_asked_is_no_change(self):
        link = [{"linkinfo": {"info_kind": "gre", "info_data": {
            "local": "192.168.137.31", "remote": "192.168.137.21", "ttl": 64}}}]
        addr = [{"addr_info": [{"local": "172.16.0.2", "prefixlen": 32}]}]

        def answer(args):
            if "-d" in args:
                return (0, json.dumps(link))
            if "addr" in args:
                return (0, json.dumps(addr))
            return (0, "")
        _, state, commands = loaded(answer)
        ret = state.gre_tunnel("rr-gre0", "192.168.137.31", "192.168.137.21",
                               address="172.16.0.2", peer="172.16.0.1")
        self.assertEqual((ret["result"], ret["changes"]), (True, {}))
        self.assertEqual(commands.changing("add", "change"), [])


if __name__ == "__main__":
    unittest.main()
