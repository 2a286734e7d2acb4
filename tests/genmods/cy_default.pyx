# cy_default: a Cython module built the default way (no directives, no CYTHON_USE_MODULE_STATE):
# multi-phase init without a Py_mod_multiple_interpreters slot, refused by isolated
# interpreters, and loadable into one interpreter per process.

def add(a, b):
    return a + b
