{#- A client: its source address from C, the way toward the service
    addresses (the router, or a GRE tunnel to the balancer where there is
    no router), reverse-path filtering off (replies come straight from the
    servers, not back the way requests went), and the test tools. #}
{%- from "common/map.jinja" import rr with context %}
{%- from "common/service.jinja" import service with context %}
{%- import "common/net.jinja" as net with context %}

include:
  - common
{%- if rr.me not in rr.plan['clients'] %}

client-not-in-iteration:
  test.fail_without_changes:
    - name: {{ rr.me }} is not a client of iteration {{ rr.cfg['iteration'] }}

{%- else %}
{%-   set source = rr.cfg['clients'][rr.me] %}
{%-   set address_state = {('rr_ifconfig' if rr.freebsd else 'rr_net'): 'client-address'} %}

{%-   if rr.packages %}

client-tools:
  pkg.installed:
    - pkgs:
      - curl
{%-   endif %}

{{ net.loopback_address(rr, 'client-address', source, 0) }}

{%-   if rr.freebsd %}
{{ net.sysctls(rr, 'client', {'net.inet.ip.check_interface': 0}) }}
{%-   else %}
{{ net.sysctls(rr, 'client', {
      'net.ipv4.conf.all.rp_filter': 0,
      'net.ipv4.conf.default.rp_filter': 0,
      'net.ipv4.conf.' ~ rr.interface ~ '.rp_filter': 0}) }}
{%-   endif %}

{%-   if rr.plan['routers'] %}
{#- The router tunnels the service addresses to the balancers. #}
{%-     set router = rr.plan['routers'][0] %}
{{ net.route(rr, 'route-to-services', rr.service_net, via=rr.hosts[router], src=source,
             require=[address_state]) }}

{%-   else %}
{#- No router: this client tunnels to the iteration's balancer itself. #}
{%-     set lb = rr.plan['balancers'][0] %}
{%-     set tunnel = rr.cfg['tunnels'][lb] %}
{%-     if rr.kernel_gre %}
{{ net.gre(rr, 'gre-to-' ~ lb, 0, rr.hosts[lb], tunnel['client'], tunnel['server']) }}
{{ net.route(rr, 'route-to-services', rr.service_net,
             via=tunnel['server'] if rr.freebsd else None,
             dev=None if rr.freebsd else 'rr-gre0', src=source,
             require=[address_state, {('rr_ifconfig' if rr.freebsd else 'rr_net'): 'gre-to-' ~ lb}]) }}
{%-     else %}
{#- Ready is the endpoint's "; ready" line, printed once its tun and its
    own route exist: the tun alone appears first, and the route state below
    would then race the endpoint's `ip route add` (which fails on a route
    that exists, and the endpoint exits). #}
{{ service(rr, 'rr_gre_encap',
           [rr.testbed, 'tunnel', 'encap', '--tun', 'rr-gre', '--vip', rr.service_net,
            '--remote', rr.hosts[lb]],
           ready={'log': '; ready'}) }}
{#- The endpoint routes the services into its tun; the source address
    is this client's C address. #}
{{ net.route(rr, 'route-to-services', rr.service_net, dev='rr-gre', src=source,
             require=[address_state, {('rr_daemon' if rr.manager == 'process' else 'service'): 'rr_gre_encap'}]) }}
{%-     endif %}
{%-   endif %}
{%- endif %}
