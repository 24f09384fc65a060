"""The job harness's own copy of the builtins, taken before any untrusted code runs.

The modules that run next to the program (`_job`, `guards`, `wire`) begin with
`from focalpo.sandbox._builtins import BUILTINS as __builtins__`, so the functions they define
look `len`, `isinstance`, `memoryview` & co. up in this copy, never in the `builtins` module that a
program may patch (`builtins.len = lambda x: 0` used to garble the job's result frames). The
zygote imports them before any program runs, so the copy holds the real builtins. Programs and
test code still run with the real `builtins` module (their namespaces name it explicitly).
"""

import builtins

BUILTINS = dict(vars(builtins))
