{#- Every machine: its directories, packages, and the rusty_rail and testbed
    binaries (built from this repository, or given in pillar). #}
{%- from "common/map.jinja" import rr with context %}
{%- set build = rr.cfg['build'] %}

rusty-rail-directories:
  file.directory:
    - names:
      - {{ rr.etc }}
      - {{ rr.run }}
      - {{ rr.log }}
    - makedirs: True

{%- if rr.packages %}

rusty-rail-packages:
  pkg.installed:
    - pkgs:
{%-   if rr.freebsd %}
      - curl
      - git
{%-   else %}
      - iproute2
      - nftables
      - ethtool
      - curl
      - git
      - build-essential
{%-   endif %}
{%- endif %}

{%- if build['from'] == 'path' %}

{#- The labs: binaries the machine has already (target/debug). #}
{%-   for binary in [rr.rusty_rail, rr.testbed] %}

{{ binary }}:
  file.exists: []
{%-   endfor %}

{%- elif build['from'] == 'binaries' %}
{%-   for name in ['rusty_rail', 'testbed'] %}

{{ rr[name] }}:
  file.managed:
    - source: {{ build[name] }}
    - skip_verify: True
    - mode: '0755'
    - makedirs: True
{%-   endfor %}

{%- elif not build['repo'] %}

rusty-rail-repository:
  test.fail_without_changes:
    - name: >-
        set rusty_rail:build:repo in the pillar to where the machines can
        clone this repository from, or rusty_rail:build:from to binaries
        (with rusty_rail:build:rusty_rail and :testbed)

{%- else %}
{%-   if rr.freebsd %}

rust-toolchain:
  pkg.installed:
    - pkgs:
      - rust
{%-     set cargo = '/usr/local/bin/cargo' %}
{%-   else %}

{#- Debian's own cargo is older than the 1.89 the workspace needs. #}
rust-toolchain:
  cmd.run:
    - name: curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    - creates: /root/.cargo/bin/cargo
    - require:
      - pkg: rusty-rail-packages
{%-     set cargo = '/root/.cargo/bin/cargo' %}
{%-   endif %}

rusty-rail-source:
  git.latest:
    - name: {{ build['repo'] }}
    - rev: {{ build['rev'] }}
    - target: {{ build['src_dir'] }}
    - force_reset: True
    - require:
      - pkg: rusty-rail-packages

rusty-rail-build:
  cmd.run:
    - name: {{ cargo }} build --release --locked -p control --bin rusty_rail -p testbed --bin testbed
    - cwd: {{ build['src_dir'] }}
    - onchanges:
      - git: rusty-rail-source
    - require:
      - rust-toolchain
{%-   for name in ['rusty_rail', 'testbed'] %}

{{ rr[name] }}:
  file.copy:
    - source: {{ build['src_dir'] }}/target/release/{{ name }}
    - force: True
    - mode: '0755'
    - makedirs: True
    - onchanges:
      - cmd: rusty-rail-build
{%-   endfor %}
{%- endif %}
