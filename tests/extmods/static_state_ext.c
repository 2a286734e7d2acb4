/* static_state_ext: multi-phase, claims per-interpreter GIL support, but keeps its state in C
   statics shared by every interpreter of the process.

   Planted defect: C static state.  The module declares Py_mod_multiple_interpreters =
   Py_MOD_PER_INTERPRETER_GIL_SUPPORTED, so isolated interpreters import it, yet
     - exec_count() returns a C static incremented on every Py_mod_exec, so it is 1 in the first
       interpreter that imports the module and 2 in the second (a maintainer's test asserts 1);
     - get_cached_sys() returns the `sys` module cached in a C static by the first exec, so in the
       second interpreter it is not that interpreter's `sys` (and handing it out there touches an
       object of another interpreter, a data race under own GILs).
   In a process with only the main interpreter both behave, so plain tests pass.

   Python API:
     add(a, b) -> a + b
     exec_count() -> int          number of execs in the whole process (should be 1)
     get_cached_sys() -> module   the first importer's `sys` (should be `sys`)

   The same file is built as subinterp_demo._static_state by examples/demo_ext (EXT_NAME/
   EXT_QUALNAME are defined there); tests/test_extmods.py checks that the copies stay identical. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef EXT_NAME
#  define EXT_NAME static_state_ext
#endif
#define EXT_STR_(x) #x
#define EXT_STR(x) EXT_STR_(x)
#ifndef EXT_QUALNAME
#  define EXT_QUALNAME EXT_STR(EXT_NAME)
#endif
#define EXT_INIT_(name) PyInit_##name
#define EXT_INIT(name) EXT_INIT_(name)

/* ---- process-wide state (the defect) ---- */

static long exec_count = 0;          /* DEFECT: one counter for all interpreters */
static PyObject *cached_sys = NULL;  /* DEFECT: first importer's sys, never released */

/* ---- module functions ---- */

static PyObject *
static_state_add(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return PyNumber_Add(args[0], args[1]);
}

static PyObject *
static_state_exec_count(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(exec_count);
}

static PyObject *
static_state_get_cached_sys(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    if (cached_sys == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "get_cached_sys: module was never executed");
        return NULL;
    }
    return Py_NewRef(cached_sys);
}

static PyMethodDef static_state_methods[] = {
    {"add", (PyCFunction)(void (*)(void))static_state_add, METH_FASTCALL,
     PyDoc_STR("add(a, b) -> a + b")},
    {"exec_count", static_state_exec_count, METH_NOARGS,
     PyDoc_STR("exec_count() -> how many times Py_mod_exec ran (C static: process-wide)")},
    {"get_cached_sys", static_state_get_cached_sys, METH_NOARGS,
     PyDoc_STR("get_cached_sys() -> the sys module cached in a C static at the first exec")},
    {NULL, NULL, 0, NULL},
};

/* ---- module definition ---- */

static int
static_state_exec(PyObject *Py_UNUSED(module))
{
    PyObject *sys = NULL;

    if (cached_sys == NULL) {
        sys = PyImport_ImportModule("sys");
        if (sys == NULL) {
            goto error;
        }
        cached_sys = sys; /* DEFECT: a strong reference owned by no interpreter */
        sys = NULL;
    }
    exec_count++; /* DEFECT: counts the execs of every interpreter */
    return 0;

error:
    Py_XDECREF(sys);
    return -1;
}

static PyModuleDef_Slot static_state_slots[] = {
    {Py_mod_exec, (void *)static_state_exec},
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

static struct PyModuleDef static_state_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = EXT_QUALNAME,
    .m_doc = PyDoc_STR("Multi-phase module that keeps its state in C statics."),
    .m_size = 0,
    .m_methods = static_state_methods,
    .m_slots = static_state_slots,
};

PyMODINIT_FUNC
EXT_INIT(EXT_NAME)(void)
{
    return PyModuleDef_Init(&static_state_module);
}
