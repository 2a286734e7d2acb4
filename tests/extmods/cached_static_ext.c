/* cached_static_ext: multi-phase, claims per-interpreter GIL support, but caches a Python object
   in a C static and hands it to every interpreter.

   Planted defect: a Python object cached in a C static.  The first Py_mod_exec in the process
   creates a dict {"created_by": <id of the interpreter running that exec>} and stores a strong
   reference to it in a C static that nothing ever releases; every exec then exposes that same
   dict as the module attribute `cache` (PyModule_AddObjectRef).  So the second interpreter that
   imports the module sees the first one's dict: id(cache) is equal in two live interpreters,
   cache["created_by"] names the first interpreter, and the object (allocated by the first
   interpreter) is touched under another interpreter's GIL.  In a process with only the main
   interpreter the cache is the main interpreter's own, so plain tests pass.

   Detector that must catch it: objects shared across interpreters (the same object reachable
   from the module namespace in two live interpreters).

   Python API:
     cache              dict {"created_by": id of the interpreter that first executed the module}
     add(a, b) -> a + b */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* ---- process-wide state (the defect) ---- */

static PyObject *cached_dict = NULL; /* DEFECT: first importer's dict, never released */

/* ---- module functions ---- */

static PyObject *
cached_static_add(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return PyNumber_Add(args[0], args[1]);
}

static PyMethodDef cached_static_methods[] = {
    {"add", (PyCFunction)(void (*)(void))cached_static_add, METH_FASTCALL,
     PyDoc_STR("add(a, b) -> a + b")},
    {NULL, NULL, 0, NULL},
};

/* ---- module definition ---- */

static PyObject *
new_cache(void)
{
    PyObject *dict = NULL;
    PyObject *interp_id = NULL;
    int64_t id = PyInterpreterState_GetID(PyInterpreterState_Get());

    if (id < 0) {
        goto error;
    }
    interp_id = PyLong_FromLongLong((long long)id);
    if (interp_id == NULL) {
        goto error;
    }
    dict = PyDict_New();
    if (dict == NULL) {
        goto error;
    }
    if (PyDict_SetItemString(dict, "created_by", interp_id) < 0) {
        goto error;
    }
    Py_DECREF(interp_id);
    return dict;

error:
    Py_XDECREF(interp_id);
    Py_XDECREF(dict);
    return NULL;
}

static int
cached_static_exec(PyObject *module)
{
    PyObject *cache = __atomic_load_n(&cached_dict, __ATOMIC_ACQUIRE);

    if (cache == NULL) {
        PyObject *expected = NULL;
        PyObject *fresh = new_cache();
        if (fresh == NULL) {
            return -1;
        }
        /* DEFECT: the strong reference in the static is owned by no interpreter.  (The
           compare-exchange only keeps two first execs under own GILs from both caching one.) */
        if (__atomic_compare_exchange_n(&cached_dict, &expected, fresh, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            cache = fresh;
        }
        else {
            Py_DECREF(fresh);
            cache = expected;
        }
    }
    /* DEFECT: every interpreter's module exposes the first interpreter's dict */
    if (PyModule_AddObjectRef(module, "cache", cache) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot cached_static_slots[] = {
    {Py_mod_exec, (void *)cached_static_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* 3.12+: the (false) claim that lets isolated interpreters import it */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* 3.13+: a free-threaded build would re-enable the GIL without it */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef cached_static_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cached_static_ext",
    .m_doc = PyDoc_STR("Multi-phase module that shares a dict cached in a C static."),
    .m_size = 0,
    .m_methods = cached_static_methods,
    .m_slots = cached_static_slots,
};

PyMODINIT_FUNC
PyInit_cached_static_ext(void)
{
    return PyModuleDef_Init(&cached_static_module);
}
