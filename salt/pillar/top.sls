base:
  '*':
    - rusty_rail
