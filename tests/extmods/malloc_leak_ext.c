/* malloc_leak_ext: multi-phase, claims per-interpreter GIL support, and leaks C heap memory every
   time an interpreter executes it.

   Planted defect: a malloc per Py_mod_exec that is never freed.  Each exec mallocs 128 KiB
   (MALLOC_LEAK_BYTES), memsets it so its pages are really touched (RSS grows, not only the
   address space), and chains it onto a process-wide list that nothing ever frees: no m_free, no
   m_clear.  So every interpreter that imports the module and ends leaves 128 KiB behind; a
   process that creates and destroys R interpreters grows by R * 128 KiB.  In a process with only
   the main interpreter the module is executed once and behaves, so plain tests pass.

   Detector that must catch it: memory per interpreter lifetime (process memory growth over R
   sequential interpreters, minus a control battery's growth).

   Python API:
     add(a, b) -> a + b */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <string.h>

#define MALLOC_LEAK_BYTES (128 * 1024)

/* ---- process-wide state (the defect) ---- */

/* DEFECT: the head of a chain of 128 KiB blocks, one per exec, never freed.  Each block's first
   word points to the previous head.  Keeping the blocks reachable stops the compiler from
   eliding malloc+memset; an atomic exchange keeps concurrent execs (own GILs) from losing one. */
static void *leaked_blocks = NULL;

/* ---- module functions ---- */

static PyObject *
malloc_leak_add(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return PyNumber_Add(args[0], args[1]);
}

static PyMethodDef malloc_leak_methods[] = {
    {"add", (PyCFunction)(void (*)(void))malloc_leak_add, METH_FASTCALL,
     PyDoc_STR("add(a, b) -> a + b")},
    {NULL, NULL, 0, NULL},
};

/* ---- module definition ---- */

static int
malloc_leak_exec(PyObject *Py_UNUSED(module))
{
    void *block = malloc(MALLOC_LEAK_BYTES); /* DEFECT: never freed */
    if (block == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(block, 0xA5, MALLOC_LEAK_BYTES); /* touch every page: real memory, not just address space */
    void *previous = __atomic_exchange_n(&leaked_blocks, block, __ATOMIC_ACQ_REL);
    memcpy(block, &previous, sizeof(previous));
    return 0;
}

static PyModuleDef_Slot malloc_leak_slots[] = {
    {Py_mod_exec, (void *)malloc_leak_exec},
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

static struct PyModuleDef malloc_leak_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "malloc_leak_ext",
    .m_doc = PyDoc_STR("Multi-phase module that leaks 128 KiB of malloc'd memory per exec."),
    .m_size = 0,
    .m_methods = malloc_leak_methods,
    .m_slots = malloc_leak_slots,
};

PyMODINIT_FUNC
PyInit_malloc_leak_ext(void)
{
    return PyModuleDef_Init(&malloc_leak_module);
}
