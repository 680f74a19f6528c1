{#- A balancer: rusty_rail on the machine's V interface, forwarding GRE from
    the clients' end to the iteration's servers, with its offloads off. #}
{%- from "common/map.jinja" import rr with context %}
{%- from "common/service.jinja" import service with context %}

include:
  - common
{%- set balancer = rr.cfg['balancer'] %}
{%- if rr.me not in rr.plan['balancers'] %}

lb-not-in-iteration:
  test.fail_without_changes:
    - name: {{ rr.me }} is not a balancer of iteration {{ rr.cfg['iteration'] }}

{%- else %}
{%-   set targets = [] %}
{%-   for server in rr.plan['servers'] %}
{%-     do targets.append(rr.hosts[server]) %}
{%-   endfor %}
{%-   if balancer['io'] != 'auto' %}
{%-     set io = balancer['io'] %}
{%-   elif rr.freebsd or (grains.get('rr_netmap', False) and 'netmap' in balancer['io_built']) %}
{%-     set io = 'netmap' %}
{%-   elif 'af_xdp' in balancer['io_built'] %}
{#-     The balancer's own auto opens AF_XDP where the kernel and NIC have
        it and falls back to AF_PACKET. #}
{%-     set io = 'auto' %}
{%-   else %}
{%-     set io = 'af_packet' %}
{%-   endif %}
{%-   set env = {'RR_DEVICE': rr.interface, 'RR_TARGET_IPS': targets | join(';'), 'RR_IO': io} %}
{%-   do env.update(balancer['env']) %}

{%-   if rr.freebsd %}

{#- netmap's rings and the GRE module the host stack needs for what the
    balancer passes through. #}
if_gre_load:
  rr_sysrc.managed:
    - value: 'YES'
    - file: /boot/loader.conf
{%-     for name, value in balancer['netmap_sysctls'] | dictsort %}

{{ name }}:
  sysctl.present:
    - value: {{ value }}
{%-     endfor %}

lb-offloads-off:
  rr_ifconfig.offloads_off:
    - name: {{ rr.interface }}
    - words: [rxcsum, txcsum, tso, lro, vlanhwtso]

{{ service(rr, 'rusty_rail', [rr.rusty_rail], env,
           require=[{'rr_ifconfig': 'lb-offloads-off'}, {'rr_sysrc': 'if_gre_load'}],
           precmd='ifconfig ' ~ rr.interface ~ ' -rxcsum -txcsum -tso -lro -vlanhwtso') }}

{%-   else %}

{#- GRO and LRO would hand the balancer frames merged beyond the MTU; it
    turns them off itself while it runs, this keeps them off. #}
lb-offloads-off:
  rr_net.offloads:
    - name: {{ rr.interface }}
    - gro: False
    - lro: False

{{ service(rr, 'rusty_rail', [rr.rusty_rail], env,
           ready={'log': 'running; SIGINT or SIGTERM stops'},
           require=[{'rr_net': 'lb-offloads-off'}]) }}
{%-   endif %}
{%- endif %}
