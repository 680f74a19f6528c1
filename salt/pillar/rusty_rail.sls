# The testbed: its networks, its machines and the four iterations of the
# deployment clients -> router (GRE) -> balancers -> servers (GRE
# decapsulation, direct server return). Every machine runs a minion whose id
# is its hostname, ROLE-N, and whose `roles` grain names its role.
rusty_rail:
  # Which iteration the machines are provisioned for: '1' to '4'.
  iteration: '1'

  networks:
    V: 192.168.137.0/24   # the machines' own network
    T: 172.16.0.0/22      # GRE tunnel inner addresses, one pair per balancer
    C: 10.0.0.0/24        # client source addresses
    S: 10.1.0.0/24        # service addresses

  # Each machine's address on V, by hostname.
  hosts:
    router-1: 192.168.137.2
    client-1: 192.168.137.11
    client-2: 192.168.137.12
    lb-1: 192.168.137.21
    lb-2: 192.168.137.22
    server-1: 192.168.137.31
    server-2: 192.168.137.32

  # C: the source address of each client (C1 = 10.0.0.1).
  clients:
    client-1: 10.0.0.1
    client-2: 10.0.0.2

  # S: the service addresses every server holds (S1 = 10.1.0.1).
  services:
    - 10.1.0.1

  # T: the GRE tunnel through balancer N carries inner addresses
  # 172.16.(N-1).1 at the client end (client or router) and .2 at the
  # server end.
  tunnels:
    lb-1: {client: 172.16.0.1, server: 172.16.0.2}
    lb-2: {client: 172.16.1.1, server: 172.16.1.2}

  iterations:
    '1': {clients: [client-1], routers: [], balancers: [lb-1], servers: [server-1]}
    '2': {clients: [client-1], routers: [], balancers: [lb-1], servers: [server-1, server-2]}
    '3': {clients: [client-1], routers: [router-1], balancers: [lb-1, lb-2], servers: [server-1, server-2]}
    '4': {clients: [client-1, client-2], routers: [router-1], balancers: [lb-1, lb-2], servers: [server-1, server-2]}

  # The interface on V, when the minion cannot find it by its address.
  interface:
    FreeBSD: vtnet0
    Linux: eth0

  ports:
    mconnect: 5001    # testbed mconnect --server
    probe: 8080       # its HTTP liveness probe
    http: 80          # nginx on the service addresses

  # How rusty_rail and testbed get onto the machines:
  #   git:      clone `repo` at `rev` into `src_dir` and build them with cargo
  #             (release), installed into `bin_dir`;
  #   binaries: `rusty_rail` and `testbed` are sources file.managed takes
  #             (salt://, https://, or a path on the minion), into `bin_dir`;
  #   path:     they are in `bin_dir` already (the labs: target/debug).
  build:
    from: git
    repo: ''          # where the minions clone this repository from
    rev: main
    src_dir: /usr/local/src/rusty-rail
    bin_dir: /usr/local/bin
    rusty_rail: ''
    testbed: ''

  balancer:
    # Packet I/O: auto picks netmap where /dev/netmap is there and the
    # build has it; else, on Linux, the balancer's own auto where the build
    # has af_xdp (AF_XDP where it opens), af_packet otherwise. io_built
    # lists the backends the balancer being installed has.
    io: auto
    io_built: [af_packet]
    # Every RR_* setting (README: Configuration); RR_DEVICE, RR_TARGET_IPS
    # and RR_IO are set from the above unless given here.
    env:
      RR_SEED: '0x5275737479526169'
      RR_LOG: info
    # FreeBSD: netmap's buffers for the rings of a 10 GbE port and its host rings.
    netmap_sysctls:
      dev.netmap.admode: 0
      dev.netmap.buf_num: 163840
      dev.netmap.ring_num: 200
      dev.netmap.if_num: 100

  # The labs (testbed/tests/salt_lab.rs) set this: minions in network
  # namespaces, processes kept by pid file under the minion's root_dir,
  # packages taken as the machine has them.
  lab: false
