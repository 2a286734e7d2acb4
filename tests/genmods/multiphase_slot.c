/* multiphase_slot: a multi-phase module (PyModuleDef_Init + Py_mod_exec, no state) whose
   Py_mod_multiple_interpreters slot is chosen at build time (tests/genbuild.py):

     -DMOD_NAME=noslot_ext                                               no slot at all
     -DMOD_NAME=legacyonly_ext   -DSLOT_VALUE=Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED
     -DMOD_NAME=notsupported_ext -DSLOT_VALUE=Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED

   CPython 3.12+ refuses all three in an isolated (own-GIL) interpreter with the same message;
   pytest_subinterp/advice.py tells them apart from the shared object.

   Python API:
     answer == 42 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(x) #x
#define STR(x) STR_(x)

static int
multiphase_exec(PyObject *module)
{
    return PyModule_AddIntConstant(module, "answer", 42);
}

static PyModuleDef_Slot multiphase_slots[] = {
    {Py_mod_exec, (void *)multiphase_exec},
#if defined(SLOT_VALUE) && PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, SLOT_VALUE},
#endif
    {0, NULL},
};

static struct PyModuleDef multiphase_def = {
    PyModuleDef_HEAD_INIT, STR(MOD_NAME), NULL, 0, NULL, multiphase_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC
CAT(PyInit_, MOD_NAME)(void)
{
    return PyModuleDef_Init(&multiphase_def);
}
