// Drives `testbed proxy` with the unchanged toxiproxy-node-client package:
// create a proxy, add a latency toxic, observe it, update it, remove it, reset.
// Usage: TOXIPROXY_URL=http://127.0.0.1:PORT ECHO=127.0.0.1:PORT node scenario.js
"use strict";
const net = require("net");
const { Toxiproxy } = require("toxiproxy-node-client");

function roundTrip(address) {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const socket = net.connect({ host, port: Number(port) }, () => socket.write("ping"));
    let got = "";
    socket.setTimeout(20000, () => reject(new Error("no echo within 20 s")));
    socket.on("data", (data) => {
      got += data.toString();
      if (got === "ping") {
        socket.end();
        resolve(Number(process.hrtime.bigint() - start) / 1e6);
      }
    });
    socket.on("error", reject);
  });
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

async function main() {
  const toxiproxy = new Toxiproxy(process.env.TOXIPROXY_URL);
  await toxiproxy.reset();
  const version = await toxiproxy.getVersion();
  check(version.includes("version"), `version: ${version}`);
  const proxy = await toxiproxy.createProxy({
    name: "node_scenario",
    listen: "127.0.0.1:0",
    upstream: process.env.ECHO,
  });
  check(!proxy.listen.endsWith(":0"), `listen shows the real port: ${proxy.listen}`);
  const base = await roundTrip(proxy.listen);
  check(base < 150, `no toxic: ${base} ms`);

  const toxic = await proxy.addToxic({
    name: "latency_downstream",
    type: "latency",
    stream: "downstream",
    toxicity: 1,
    attributes: { latency: 200, jitter: 0 },
  });
  const slow = await roundTrip(proxy.listen);
  check(slow >= 200, `latency 200: ${slow} ms`);

  const updated = await toxic.update({ attributes: { latency: 400 }, toxicity: 1 });
  check(updated.attributes.latency === 400, `update answer: ${JSON.stringify(updated.toJson())}`);
  const slower = await roundTrip(proxy.listen);
  check(slower >= 400, `latency 400: ${slower} ms`);

  await updated.remove();
  const fast = await roundTrip(proxy.listen);
  check(fast < 150, `removed: ${fast} ms`);

  await proxy.addToxic({ name: "again", type: "latency", stream: "upstream", toxicity: 1, attributes: { latency: 300, jitter: 0 } });
  await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
  await toxiproxy.reset();
  const after = await toxiproxy.get("node_scenario");
  check(after.enabled === true, "reset enables");
  const gone = await after.getToxic("again").then(() => false, () => true);
  check(gone, "reset removes toxics");
  const all = await toxiproxy.getAll();
  check("node_scenario" in all, "getAll lists the proxy");
  await after.remove();
  console.log("ok");
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : error);
  process.exit(1);
});
