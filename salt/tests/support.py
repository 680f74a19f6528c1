"""
Loads a custom module from salt/_modules, _states or _grains the way salt's
loader would for these tests: as a plain module with the dunders salt
injects (``__salt__``, ``__opts__``, ``__grains__``) set by the test.
"""

import importlib.util
import os

SALT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(kind, name, salt=None, opts=None, grains=None):
    """``kind`` is ``_modules``, ``_states`` or ``_grains``; a fresh module each call."""
    path = os.path.join(SALT_DIR, kind, name + ".py")
    spec = importlib.util.spec_from_file_location("{}_{}".format(kind.strip("_"), name), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__salt__ = salt if salt is not None else {}
    module.__opts__ = opts if opts is not None else {"test": False}
    module.__grains__ = grains if grains is not None else {}
    return module


class Commands:
    """
    A stand-in for ``cmd.run_all``: answers each command from ``answers``
    (a function of the argument list returning ``(retcode, stdout)``) and
    records what ran.
    """

    def __init__(self, answer):
        self.answer = answer
        self.ran = []

    def __call__(self, args, python_shell=False, ignore_retcode=False):
        assert python_shell is False, "commands run without a shell"
        self.ran.append(list(args))
        retcode, stdout = self.answer(list(args))
        return {"retcode": retcode, "stdout": stdout, "stderr": "" if retcode == 0 else "failed"}

    def changing(self, *verbs):
        """The commands run whose arguments hold any of ``verbs`` in their first three words."""
        return [args for args in self.ran if set(verbs) & set(args[:4])]
