#!/usr/bin/env bash
# Makes the Python virtual environment that holds salt (salt-master,
# salt-minion, salt-call, salt-key, salt) and salt-lint, for salt/ and its
# tests, and prints its path on stdout. Reused when it is already there;
# never a system-wide pip install.
#
#   RR_SALT_VENV   where it goes (default /var/cache/rusty-rail/salt-<version>,
#                  where testbed/tests/salt_lab.rs looks for it too)
#
# Salt 3008.4: 3008.5 pins a certifi newer than the package registry serves.
set -euo pipefail

salt_version=3008.4
salt_lint_version=0.9.2
wanted="salt==$salt_version salt-lint==$salt_lint_version"
venv=${RR_SALT_VENV:-/var/cache/rusty-rail/salt-$salt_version}
ready="$venv/.rusty-rail-ready"

if [ -f "$ready" ] && [ "$(cat "$ready")" = "$wanted" ]; then
  echo "$venv"
  exit 0
fi

# A venv's scripts name its interpreter by absolute path, so it is built in
# place; the ready mark, written last, tells a whole one from one an
# interrupted run left behind (which is made again).
echo "making the salt virtual environment in $venv ($wanted)" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $wanted >&2
"$venv/bin/salt-call" --version >&2
echo "$wanted" >"$ready"
echo "$venv"
