{#- A server: GRE decapsulation of what the balancers send, the service
    addresses on the loopback (answered directly to the clients: direct
    server return, so no ARP for them and no reverse-path filter in the
    way), and the services the tests use: testbed mconnect and nginx. #}
{%- from "common/map.jinja" import rr with context %}
{%- from "common/service.jinja" import service with context %}
{%- import "common/net.jinja" as net with context %}

include:
  - common
{%- if rr.me not in rr.plan['servers'] %}

server-not-in-iteration:
  test.fail_without_changes:
    - name: {{ rr.me }} is not a server of iteration {{ rr.cfg['iteration'] }}

{%- else %}
{%-   set ports = rr.ports %}

{%-   for address in rr.services %}
{{ net.loopback_address(rr, 'service-address-' ~ loop.index, address, loop.index0) }}
{%-   endfor %}

{%-   if rr.freebsd %}
{#- FreeBSD answers ARP only for addresses on the interface asked, and
    accepts packets for any local address: nothing to turn off. #}
{{ net.sysctls(rr, 'server', {'net.inet.ip.check_interface': 0}) }}
{%-   else %}
{%-     set dev = rr.interface %}
{{ net.sysctls(rr, 'server', {
      'net.ipv4.conf.all.rp_filter': 0,
      'net.ipv4.conf.default.rp_filter': 0,
      'net.ipv4.conf.' ~ dev ~ '.rp_filter': 0,
      'net.ipv4.conf.all.arp_ignore': 1,
      'net.ipv4.conf.all.arp_announce': 2,
      'net.ipv4.conf.' ~ dev ~ '.arp_ignore': 1,
      'net.ipv4.conf.' ~ dev ~ '.arp_announce': 2}) }}
{%-   endif %}

{#- Direct return: replies go straight to each client over V. #}
{%-   for client in rr.plan['clients'] %}
{{ net.route(rr, 'route-to-' ~ client, rr.cfg['clients'][client] ~ '/32', via=rr.hosts[client]) }}
{%-   endfor %}

{%-   if rr.kernel_gre %}
{%-     for lb in rr.plan['balancers'] %}
{%-       set tunnel = rr.cfg['tunnels'][lb] %}
{{ net.gre(rr, 'gre-from-' ~ lb, loop.index0, rr.hosts[lb], tunnel['server'], tunnel['client']) }}
{%-     endfor %}
{%-   else %}
{%-     set decap_require = [] %}
{%-     for address in rr.services %}
{%-       do decap_require.append({'rr_net': 'service-address-' ~ loop.index}) %}
{%-     endfor %}
{#- No kernel GRE devices: testbed's userspace endpoint, on a raw GRE
    socket, delivers the inner packets through its tun. #}
{{ service(rr, 'rr_gre_decap',
           [rr.testbed, 'tunnel', 'decap', '--tun', 'rr-gre', '--vip', rr.services | join(',')],
           ready={'log': '; ready'}, require=decap_require) }}
{%-   endif %}

{{ service(rr, 'rr_mconnect',
           [rr.testbed, 'mconnect', '--server', '--address', '0.0.0.0:' ~ ports['mconnect'],
            '--name', rr.me, '--probe', '0.0.0.0:' ~ ports['probe']],
           ready={'tcp': ports['mconnect']}) }}

{#- nginx answers "nginx on NAME" on the service addresses. #}
{%-   set nginx_require = [] %}
{%-   for address in rr.services %}
{%-     do nginx_require.append({('rr_ifconfig' if rr.freebsd else 'rr_net'): 'service-address-' ~ loop.index}) %}
{%-   endfor %}
{%-   if rr.manager == 'process' %}
{%-     set nginx_conf = rr.etc ~ '/nginx.conf' %}

nginx-config:
  file.managed:
    - name: {{ nginx_conf }}
    - source: salt://server/files/nginx.conf.jinja
    - template: jinja
    - context:
        standalone: True
        dir: {{ rr.run }}/nginx
        log_dir: {{ rr.log }}
        name: {{ rr.me }}
        addresses: {{ rr.services | json }}
        port: {{ ports['http'] }}
    - require:
      - file: rusty-rail-directories

nginx-directory:
  file.directory:
    - name: {{ rr.run }}/nginx
    - require:
      - file: rusty-rail-directories

{%-     do nginx_require.append({'file': 'nginx-directory'}) %}
{{ service(rr, 'rr_nginx', ['nginx', '-c', nginx_conf, '-g', 'daemon off;'],
           ready={'tcp': ports['http']}, configs=[{'id': 'nginx-config', 'path': nginx_conf}],
           require=nginx_require) }}
{%-   else %}

nginx:
  pkg.installed:
    - name: {{ 'nginx' if rr.freebsd else 'nginx-light' }}

nginx-config:
  file.managed:
{%-     if rr.freebsd %}
    - name: /usr/local/etc/nginx/nginx.conf
{%-     else %}
    - name: /etc/nginx/conf.d/rusty-rail.conf
{%-     endif %}
    - source: salt://server/files/nginx.conf.jinja
    - template: jinja
    - context:
        standalone: {{ rr.freebsd }}
        dir: /var/tmp/nginx
        log_dir: /var/log/nginx
        name: {{ rr.me }}
        addresses: {{ rr.services | json }}
        port: {{ ports['http'] }}
    - require:
      - pkg: nginx
{%-     if rr.freebsd %}

nginx_enable:
  rr_sysrc.managed:
    - value: 'YES'
{%-     endif %}

nginx-service:
  service.running:
    - name: nginx
    - enable: True
    - require: {{ nginx_require | json }}
    - watch:
      - file: nginx-config
{%-   endif %}
{%- endif %}
