/* fd_leak_ext: multi-phase, claims per-interpreter GIL support, and leaks a file descriptor every
   time an interpreter executes it.

   Planted defect: open(2) per Py_mod_exec without close(2).  Each exec opens /dev/null
   (O_RDONLY | O_CLOEXEC) and drops the descriptor: no m_free, no m_clear closes it.  So every
   interpreter that imports the module and ends leaves one more open descriptor in the process
   (one more entry in /proc/self/fd).  In a process with only the main interpreter the module is
   executed once and behaves, so plain tests pass.

   Detector that must catch it: file descriptors opened and not closed per interpreter lifetime.

   Python API:
     add(a, b) -> a + b */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <fcntl.h>

/* ---- module functions ---- */

static PyObject *
fd_leak_add(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return PyNumber_Add(args[0], args[1]);
}

static PyMethodDef fd_leak_methods[] = {
    {"add", (PyCFunction)(void (*)(void))fd_leak_add, METH_FASTCALL,
     PyDoc_STR("add(a, b) -> a + b")},
    {NULL, NULL, 0, NULL},
};

/* ---- module definition ---- */

static int
fd_leak_exec(PyObject *Py_UNUSED(module))
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* DEFECT: never closed */
    if (fd < 0) {
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, "/dev/null");
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot fd_leak_slots[] = {
    {Py_mod_exec, (void *)fd_leak_exec},
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

static struct PyModuleDef fd_leak_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "fd_leak_ext",
    .m_doc = PyDoc_STR("Multi-phase module that leaks one open file descriptor per exec."),
    .m_size = 0,
    .m_methods = fd_leak_methods,
    .m_slots = fd_leak_slots,
};

PyMODINIT_FUNC
PyInit_fd_leak_ext(void)
{
    return PyModuleDef_Init(&fd_leak_module);
}
