"""
FreeBSD's ``sysrc(8)`` on any rc-style file: ``/etc/rc.conf`` by default,
``/boot/loader.conf`` with ``file``.

Salt's built-in ``sysrc`` module sets whole values; a list variable that
other software also appends to (``cloned_interfaces``, ``static_routes``)
needs its words kept, and ``/boot/loader.conf`` needs ``-f``. These
functions do both.
"""

__virtualname__ = "rr_sysrc"
__func_alias__ = {"set_": "set"}


def __virtual__():
    if __grains__.get("kernel") == "FreeBSD":
        return __virtualname__
    return (False, "rr_sysrc: FreeBSD only (sysrc)")


def _sysrc(args, file=None):
    command = ["sysrc"] + (["-f", file] if file else []) + args
    result = __salt__["cmd.run_all"](command, python_shell=False, ignore_retcode=True)
    if result["retcode"] != 0:
        raise RuntimeError(
            "`{}` failed ({}): {}".format(
                " ".join(command), result["retcode"], (result.get("stderr") or "").strip()
            )
        )
    return result.get("stdout") or ""


def get(name, file=None):
    """
    The value of ``name`` in ``file`` (``/etc/rc.conf`` by default), or
    ``None`` when it is not set there.

    .. code-block:: bash

        salt '*' rr_sysrc.get cloned_interfaces
        salt '*' rr_sysrc.get if_gre_load file=/boot/loader.conf
    """
    # -i: an unset variable prints nothing (and is no error); -e prints
    # name="value", which tells an empty value from an unset one.
    text = _sysrc(["-ie", name], file).strip()
    if not text:
        return None
    value = text.split("=", 1)[1] if "=" in text else ""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value


def set_(name, value, file=None):
    """Sets ``name`` to ``value`` in ``file`` (``/etc/rc.conf`` by default)."""
    _sysrc(["{}={}".format(name, value)], file)
    return True


def words(name, file=None):
    """The space-separated words of list variable ``name`` (empty when unset)."""
    value = get(name, file)
    return value.split() if value else []


def missing_words(name, wanted, file=None):
    """The words of ``wanted`` that list variable ``name`` lacks, in order."""
    have = words(name, file)
    return [word for word in wanted if word not in have]


def add_words(name, wanted, file=None):
    """Appends the words of ``wanted`` that ``name`` lacks, keeping the others; the words added."""
    added = missing_words(name, wanted, file)
    if added:
        set_(name, " ".join(words(name, file) + added), file)
    return added
