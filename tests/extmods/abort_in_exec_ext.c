/* abort_in_exec_ext: a multi-phase module that declares per-interpreter GIL support and then
   corrupts its heap in its own Py_mod_exec, the way a buggy extension does.

   It prints glibc's "free(): invalid pointer" (the text CPython 3.12.1/3.13.0's own
   sub-interpreter aborts also print) and aborts, in the import phase, in every interpreter after
   the first.  The abort text alone must not make pytest-subinterp blame CPython: the crash is in
   this module's code (its frames are on the native stack), in the import phase.

   Python API: none; importing it in a second interpreter of the process aborts. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <stdlib.h>

static int imports = 0; /* process-wide on purpose: the planted defect */

static int __attribute__((noinline))
abort_in_exec_ext_corrupt_heap(void)
{
    fprintf(stderr, "free(): invalid pointer\n");
    fflush(stderr);
    abort();
    return -1;
}

static int
abort_in_exec_ext_exec(PyObject *Py_UNUSED(module))
{
    if (__atomic_add_fetch(&imports, 1, __ATOMIC_SEQ_CST) > 1) {
        return abort_in_exec_ext_corrupt_heap();
    }
    return 0;
}

static PyModuleDef_Slot abort_in_exec_ext_slots[] = {
    {Py_mod_exec, abort_in_exec_ext_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef abort_in_exec_ext_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "abort_in_exec_ext",
    .m_doc = "Aborts with glibc's heap-corruption text in its own Py_mod_exec (a test fixture).",
    .m_size = 0,
    .m_slots = abort_in_exec_ext_slots,
};

PyMODINIT_FUNC
PyInit_abort_in_exec_ext(void)
{
    return PyModuleDef_Init(&abort_in_exec_ext_def);
}
