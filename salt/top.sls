# Every machine gets `common`; its `roles` grain (client, router, lb, server)
# picks the rest. The pillar's `rusty_rail:iteration` says which machines
# take part and how they are wired.
base:
  '*':
    - common
  'roles:client':
    - match: grain
    - client
  'roles:router':
    - match: grain
    - router
  'roles:lb':
    - match: grain
    - lb
  'roles:server':
    - match: grain
    - server
