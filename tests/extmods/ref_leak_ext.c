/* ref_leak_ext: multi-phase, claims per-interpreter GIL support, and leaks a reference on every
   call of one of its functions.

   Planted defect: a missing Py_DECREF.  leak() creates a new empty list (PyList_New(0)) and
   drops the only reference to it without decrementing it, so each call leaks one list object:
   one more allocated block (sys.getallocatedblocks()) and, on debug builds, one more reference
   (sys.gettotalrefcount()).  The object is not part of a cycle, so the cyclic GC never frees it.
   noleak() is the correct counterpart (creates the list and releases it).  Both return None and
   neither fails, so plain tests pass.

   Detector that must catch it: references / allocated blocks per call (regrtest -R style: warm-up
   calls, then a consistently positive delta of sys.getallocatedblocks()).

   Python API:
     leak() -> None      leaks one empty list per call
     noleak() -> None    the same without the leak */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* ---- module functions ---- */

static PyObject *
ref_leak_leak(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    /* DEFECT: missing Py_DECREF(list); the new list is never released */
    Py_RETURN_NONE;
}

static PyObject *
ref_leak_noleak(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    Py_DECREF(list);
    Py_RETURN_NONE;
}

static PyMethodDef ref_leak_methods[] = {
    {"leak", ref_leak_leak, METH_NOARGS,
     PyDoc_STR("leak() -> None: create an empty list and leak it (one reference per call)")},
    {"noleak", ref_leak_noleak, METH_NOARGS,
     PyDoc_STR("noleak() -> None: create an empty list and release it")},
    {NULL, NULL, 0, NULL},
};

/* ---- module definition ---- */

static PyModuleDef_Slot ref_leak_slots[] = {
#if PY_VERSION_HEX >= 0x030C0000
    /* 3.12+: the claim that lets isolated interpreters import it */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* 3.13+: a free-threaded build would re-enable the GIL without it */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef ref_leak_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ref_leak_ext",
    .m_doc = PyDoc_STR("Multi-phase module whose leak() leaks one reference per call."),
    .m_size = 0,
    .m_methods = ref_leak_methods,
    .m_slots = ref_leak_slots,
};

PyMODINIT_FUNC
PyInit_ref_leak_ext(void)
{
    return PyModuleDef_Init(&ref_leak_module);
}
