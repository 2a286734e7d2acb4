/* static_type_ext: multi-phase, claims per-interpreter GIL support, but exposes a STATIC type.

   Planted defect: a static PyTypeObject.  StaticThing is a `static PyTypeObject` made ready with
   PyType_Ready and added to every module object with PyModule_AddObjectRef.  The module declares
   Py_mod_multiple_interpreters = Py_MOD_PER_INTERPRETER_GIL_SUPPORTED, so on 3.12+ isolated
   interpreters import it, and then one and the same type object (its refcount, its tp_dict, its
   MRO tuple, its subclass list) is shared by every interpreter of the process: id(StaticThing)
   is equal in two interpreters alive at once, and with own GILs their refcount updates race.
   The fix is a heap type per module object (PyType_FromModuleAndSpec, as good_ext.Counter).
   In a process with only the main interpreter nothing is shared, so plain tests pass.

   PyType_Ready returns at once for a type already flagged Py_TPFLAGS_READY, so in effect the
   type is made ready by the first exec in the process (in whichever interpreter that runs), and
   every later exec just exposes the same object.

   Detector that must catch it: objects shared across interpreters (the same object reachable
   from the module namespace in two live interpreters).

   Python API:
     StaticThing()      static type; instances have no attributes of their own
     add(a, b) -> a + b */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* ---- the static type (the defect) ---- */

static PyTypeObject StaticThing_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "static_type_ext.StaticThing",
    .tp_basicsize = sizeof(PyObject),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("StaticThing() -> an instance of a static type shared by all interpreters"),
    .tp_new = PyType_GenericNew,
};

/* ---- module functions ---- */

static PyObject *
static_type_add(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return PyNumber_Add(args[0], args[1]);
}

static PyMethodDef static_type_methods[] = {
    {"add", (PyCFunction)(void (*)(void))static_type_add, METH_FASTCALL,
     PyDoc_STR("add(a, b) -> a + b")},
    {NULL, NULL, 0, NULL},
};

/* ---- module definition ---- */

static int
static_type_exec(PyObject *module)
{
    /* A no-op after the first successful call in the process (Py_TPFLAGS_READY is set). */
    if (PyType_Ready(&StaticThing_Type) < 0) {
        return -1;
    }
    /* DEFECT: the same static object goes into the namespace of every interpreter */
    if (PyModule_AddObjectRef(module, "StaticThing", (PyObject *)&StaticThing_Type) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot static_type_slots[] = {
    {Py_mod_exec, (void *)static_type_exec},
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

static struct PyModuleDef static_type_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "static_type_ext",
    .m_doc = PyDoc_STR("Multi-phase module that exposes a static type to every interpreter."),
    .m_size = 0,
    .m_methods = static_type_methods,
    .m_slots = static_type_slots,
};

PyMODINIT_FUNC
PyInit_static_type_ext(void)
{
    return PyModuleDef_Init(&static_type_module);
}
