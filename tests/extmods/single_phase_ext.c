/* single_phase_ext: a legacy single-phase module (PyModule_Create in PyInit, m_size = -1).

   Planted defect: single-phase initialisation.  Such a module has one copy of its state per
   process, so CPython 3.12+ refuses it in an isolated (own-GIL) interpreter with
   "ImportError: module single_phase_ext does not support loading in subinterpreters".  It still
   loads in the main interpreter and in legacy sub-interpreters (shared GIL, where CPython copies
   the module dict from the first import).

   Python API:
     add(a, b) -> a + b

   The same file is built as subinterp_demo._single_phase and as subinterp_demo._fallback by
   examples/demo_ext (EXT_NAME/EXT_QUALNAME are defined there); tests/test_extmods.py checks that
   the copies stay identical. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef EXT_NAME
#  define EXT_NAME single_phase_ext
#endif
#define EXT_STR_(x) #x
#define EXT_STR(x) EXT_STR_(x)
#ifndef EXT_QUALNAME
#  define EXT_QUALNAME EXT_STR(EXT_NAME)
#endif
#define EXT_INIT_(name) PyInit_##name
#define EXT_INIT(name) EXT_INIT_(name)

/* ---- module functions ---- */

static PyObject *
single_phase_add(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return PyNumber_Add(args[0], args[1]);
}

static PyMethodDef single_phase_methods[] = {
    {"add", (PyCFunction)(void (*)(void))single_phase_add, METH_FASTCALL,
     PyDoc_STR("add(a, b) -> a + b")},
    {NULL, NULL, 0, NULL},
};

/* ---- module definition ---- */

static struct PyModuleDef single_phase_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = EXT_QUALNAME,
    .m_doc = PyDoc_STR("Legacy single-phase module: refused by isolated sub-interpreters."),
    .m_size = -1, /* DEFECT: global state, no m_slots: single-phase init */
    .m_methods = single_phase_methods,
};

PyMODINIT_FUNC
EXT_INIT(EXT_NAME)(void)
{
    PyObject *module = PyModule_Create(&single_phase_module);
    if (module == NULL) {
        goto error;
    }
    if (PyModule_AddIntConstant(module, "SINGLE_PHASE", 1) < 0) {
        goto error;
    }
    return module;

error:
    Py_XDECREF(module);
    return NULL;
}
