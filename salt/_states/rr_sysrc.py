"""
rc-style variables on FreeBSD through ``sysrc(8)`` (the ``rr_sysrc``
execution module): whole values, and words kept in list variables.

.. code-block:: yaml

    if_gre_load:
      rr_sysrc.managed:
        - value: "YES"
        - file: /boot/loader.conf

    cloned_interfaces:
      rr_sysrc.listed:
        - words: [gre1]
"""


def __virtual__():
    if "rr_sysrc.get" in __salt__:
        return "rr_sysrc"
    return (False, "rr_sysrc: the rr_sysrc execution module is not loaded (FreeBSD only)")


def managed(name, value, file=None):
    """``name`` is ``value`` in ``file`` (``/etc/rc.conf`` by default)."""
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    value = str(value)
    where = file or "/etc/rc.conf"
    try:
        current = __salt__["rr_sysrc.get"](name, file)
        if current == value:
            ret["comment"] = '{}="{}" in {}'.format(name, value, where)
            return ret
        ret["changes"] = {name: {"old": current, "new": value}}
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = '{}="{}" would be set in {}'.format(name, value, where)
            return ret
        __salt__["rr_sysrc.set"](name, value, file)
    except Exception as error:  # pylint: disable=broad-except
        ret["changes"] = {}
        ret["result"] = False
        ret["comment"] = str(error)
        return ret
    ret["comment"] = '{}="{}" set in {}'.format(name, value, where)
    return ret


def listed(name, words, file=None):
    """The list variable ``name`` holds every one of ``words``; its other words stay."""
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    where = file or "/etc/rc.conf"
    try:
        missing = __salt__["rr_sysrc.missing_words"](name, list(words), file)
        if not missing:
            ret["comment"] = "{} in {} holds {}".format(name, where, " ".join(words))
            return ret
        ret["changes"] = {"added": missing}
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = "{} would be added to {} in {}".format(" ".join(missing), name, where)
            return ret
        __salt__["rr_sysrc.add_words"](name, list(words), file)
    except Exception as error:  # pylint: disable=broad-except
        ret["changes"] = {}
        ret["result"] = False
        ret["comment"] = str(error)
        return ret
    ret["comment"] = "{} added to {} in {}".format(" ".join(missing), name, where)
    return ret
