{#- A router: forwards the clients' traffic for the service addresses to the
    balancers in GRE, spreading flows over them (ECMP). #}
{%- from "common/map.jinja" import rr with context %}
{%- from "common/service.jinja" import service with context %}
{%- import "common/net.jinja" as net with context %}

include:
  - common
{%- if rr.me not in rr.plan['routers'] %}

router-not-in-iteration:
  test.fail_without_changes:
    - name: {{ rr.me }} is not a router of iteration {{ rr.cfg['iteration'] }}

{%- else %}
{%-   set balancers = rr.plan['balancers'] %}

{%-   if rr.freebsd %}

gateway_enable:
  rr_sysrc.managed:
    - value: 'YES'
{{ net.sysctls(rr, 'router', {'net.inet.ip.forwarding': 1, 'net.route.multipath': 1}) }}
{#- One gre(4) per balancer and a route to the services through each:
    FreeBSD's multipath routing spreads flows over them. #}
{%-     for lb in balancers %}
{%-       set tunnel = rr.cfg['tunnels'][lb] %}
{{ net.gre(rr, 'gre-to-' ~ lb, loop.index0, rr.hosts[lb], tunnel['client'], tunnel['server']) }}
{{ net.route(rr, 'route-via-' ~ lb, rr.service_net, via=tunnel['server'],
             require=[{'rr_ifconfig': 'gre-to-' ~ lb}]) }}
{%-     endfor %}

{%-   else %}
{{ net.sysctls(rr, 'router', {
      'net.ipv4.ip_forward': 1,
      'net.ipv4.conf.all.rp_filter': 0,
      'net.ipv4.conf.default.rp_filter': 0,
      'net.ipv4.conf.' ~ rr.interface ~ '.rp_filter': 0,
      'net.ipv4.fib_multipath_hash_policy': 1}) }}
{%-     set remotes = [] %}
{%-     for lb in balancers %}
{%-       do remotes.append(rr.hosts[lb]) %}
{%-     endfor %}
{#- testbed's encapsulating endpoint: the service addresses routed into its
    tun, sent as GRE to the balancers, flows spread by a seeded hash of the
    inner 5-tuple. #}
{{ service(rr, 'rr_gre_encap',
           [rr.testbed, 'tunnel', 'encap', '--tun', 'rr-gre', '--vip', rr.service_net,
            '--remote', remotes | join(','), '--seed', '7'],
           ready={'log': '; ready'},
           require=[{'rr_net': 'router-net.ipv4.ip_forward'}]) }}
{%-   endif %}
{%- endif %}
