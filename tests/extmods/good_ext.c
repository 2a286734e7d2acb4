/* good_ext: a correct multi-phase extension module, the control of the test fixtures.

   Plants no defect.  Modelled on CPython's Modules/xxlimited.c: PyModuleDef_Init, a Py_mod_exec
   slot, all state in module state (a heap type made with PyType_FromModuleAndSpec, a cached `sys`
   module, an exec counter), m_traverse/m_clear/m_free, and the per-interpreter GIL / GIL slots.
   Every interpreter that imports it gets its own module object, type and state, so it must pass
   in isolated and legacy sub-interpreters alike.

   Python API:
     add(a, b) -> a + b
     exec_count() -> int      how often Py_mod_exec ran for THIS module object: always 1
     get_cached_sys() -> module   the `sys` module cached in module state at exec: `is sys`
     Counter()                heap type; Counter().incr() -> 1, 2, ...; .value is the count

   The same file is built as subinterp_demo._good by examples/demo_ext (EXT_NAME/EXT_QUALNAME are
   defined there); tests/test_extmods.py checks that the two copies stay identical. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef EXT_NAME
#  define EXT_NAME good_ext
#endif
#define EXT_STR_(x) #x
#define EXT_STR(x) EXT_STR_(x)
#ifndef EXT_QUALNAME
#  define EXT_QUALNAME EXT_STR(EXT_NAME)
#endif
#define EXT_INIT_(name) PyInit_##name
#define EXT_INIT(name) EXT_INIT_(name)

/* ---- module state ---- */

typedef struct {
    PyObject *Counter_Type; /* heap type, one per module object */
    PyObject *cached_sys;   /* the importing interpreter's `sys` */
    long exec_count;        /* Py_mod_exec runs for this module object */
} good_state;

static good_state *
good_get_state(PyObject *module)
{
    void *state = PyModule_GetState(module);
    assert(state != NULL);
    return (good_state *)state;
}

/* ---- Counter type ---- */

typedef struct {
    PyObject_HEAD
    long long value;
} CounterObject;

static int
Counter_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self)); /* heap type instances own a reference to their type */
    return 0;
}

static void
Counter_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
Counter_incr(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    CounterObject *c = (CounterObject *)self;
    c->value++;
    return PyLong_FromLongLong(c->value);
}

static PyObject *
Counter_get_value(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(((CounterObject *)self)->value);
}

static PyMethodDef Counter_methods[] = {
    {"incr", Counter_incr, METH_NOARGS, PyDoc_STR("incr() -> int: add one and return the new value")},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Counter_getset[] = {
    {"value", Counter_get_value, NULL, PyDoc_STR("current count"), NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Counter_slots[] = {
    {Py_tp_doc, (void *)PyDoc_STR("Counter() -> a counter starting at 0")},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_traverse, (void *)Counter_traverse},
    {Py_tp_dealloc, (void *)Counter_dealloc},
    {Py_tp_methods, (void *)Counter_methods},
    {Py_tp_getset, (void *)Counter_getset},
    {0, NULL},
};

static PyType_Spec Counter_spec = {
    .name = EXT_QUALNAME ".Counter",
    .basicsize = sizeof(CounterObject),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Counter_slots,
};

/* ---- module functions ---- */

static PyObject *
good_add(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return PyNumber_Add(args[0], args[1]);
}

static PyObject *
good_exec_count(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(good_get_state(module)->exec_count);
}

static PyObject *
good_get_cached_sys(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    good_state *state = good_get_state(module);
    if (state->cached_sys == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "get_cached_sys: module state was cleared");
        return NULL;
    }
    return Py_NewRef(state->cached_sys);
}

static PyMethodDef good_methods[] = {
    {"add", (PyCFunction)(void (*)(void))good_add, METH_FASTCALL, PyDoc_STR("add(a, b) -> a + b")},
    {"exec_count", good_exec_count, METH_NOARGS,
     PyDoc_STR("exec_count() -> how many times Py_mod_exec ran for this module object (1)")},
    {"get_cached_sys", good_get_cached_sys, METH_NOARGS,
     PyDoc_STR("get_cached_sys() -> the sys module cached in module state")},
    {NULL, NULL, 0, NULL},
};

/* ---- module definition ---- */

static int
good_exec(PyObject *module)
{
    good_state *state = good_get_state(module);

    state->Counter_Type = PyType_FromModuleAndSpec(module, &Counter_spec, NULL);
    if (state->Counter_Type == NULL) {
        goto error;
    }
    if (PyModule_AddType(module, (PyTypeObject *)state->Counter_Type) < 0) {
        goto error;
    }
    state->cached_sys = PyImport_ImportModule("sys");
    if (state->cached_sys == NULL) {
        goto error;
    }
    state->exec_count++;
    return 0;

error:
    /* m_clear releases whatever was stored in the state */
    return -1;
}

static int
good_traverse(PyObject *module, visitproc visit, void *arg)
{
    good_state *state = good_get_state(module);
    Py_VISIT(state->Counter_Type);
    Py_VISIT(state->cached_sys);
    return 0;
}

static int
good_clear(PyObject *module)
{
    good_state *state = good_get_state(module);
    Py_CLEAR(state->Counter_Type);
    Py_CLEAR(state->cached_sys);
    return 0;
}

static void
good_free(void *module)
{
    (void)good_clear((PyObject *)module);
}

static PyModuleDef_Slot good_slots[] = {
    {Py_mod_exec, (void *)good_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* 3.12+: without this slot an isolated (own-GIL) interpreter refuses the import */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* 3.13+: a free-threaded build would re-enable the GIL without it; we do need the GIL */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef good_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = EXT_QUALNAME,
    .m_doc = PyDoc_STR("Correct multi-phase module: all state per module object."),
    .m_size = sizeof(good_state),
    .m_methods = good_methods,
    .m_slots = good_slots,
    .m_traverse = good_traverse,
    .m_clear = good_clear,
    .m_free = good_free,
};

PyMODINIT_FUNC
EXT_INIT(EXT_NAME)(void)
{
    return PyModuleDef_Init(&good_module);
}
