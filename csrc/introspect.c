/* introspect.c: small helpers that Python code calls from inside an interpreter: the inner
   plugin's phase and breadcrumbs, the index of the current interpreter in the battery, and what
   an extension module's PyModuleDef declares (single/multi-phase, slots) for the leak analysis
   and `pytest-subinterp check`. */

#include "subinterp.h"

#include <string.h>

/* ---- small helpers used by the inner plugin ---- */

PyObject *
subinterp_set_phase(PyObject *Py_UNUSED(module), PyObject *args)
{
    const char *phase;
    if (!PyArg_ParseTuple(args, "s:set_phase", &phase)) {
        return NULL;
    }
    /* The crash handler reads subinterp_here.phase: keep a pointer to a static string. */
    static const char *const known[] = {"collect", "setup", "call", "teardown", "import",
                                        "finish", "call-wait", "idle"};
    const char *stable = "python";
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        if (strcmp(known[k], phase) == 0) {
            stable = known[k];
        }
    }
    interp_slot *slot = subinterp_current_slot(subinterp_current_battery);
    subinterp_set_where(slot ? slot->index : -1, subinterp_here.thread, subinterp_here.round, stable);
    Py_RETURN_NONE;
}

PyObject *
subinterp_interpreter_index(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(unused))
{
    interp_slot *slot = subinterp_current_slot(subinterp_current_battery);
    return PyLong_FromLong(slot ? slot->index : -1);
}

PyObject *
subinterp_breadcrumb_py(PyObject *Py_UNUSED(module), PyObject *args)
{
    const char *text;
    if (!PyArg_ParseTuple(args, "s:breadcrumb", &text)) {
        return NULL;
    }
    subinterp_breadcrumb("%s", text);
    Py_RETURN_NONE;
}

/* ---- module definitions (inner plugin and `pytest-subinterp check`) ---- */

PyObject *
subinterp_is_single_phase(PyObject *Py_UNUSED(module), PyObject *candidate)
{
    if (!PyModule_Check(candidate)) {
        Py_RETURN_FALSE;
    }
    /* Multi-phase modules come from PyModuleDef_Init with Py_mod_* slots; single-phase ones
       (PyModule_Create) have none.  A def without any slot is rare enough to ignore.  The copy
       of a single-phase module that CPython makes for a later legacy interpreter (m_copy) has
       no def at all.  Callers pass extension modules only: Python modules have no def either. */
    PyModuleDef *def = PyModule_GetDef(candidate);
    if (def == NULL) {
        PyErr_Clear();
        Py_RETURN_TRUE;
    }
    return PyBool_FromLong(def->m_slots == NULL);
}

/* What a module's PyModuleDef declares, for `pytest-subinterp check`: whether it is multi-phase,
   its Py_mod_multiple_interpreters / Py_mod_gil slot values (None when the slot is absent or the
   Python is too old to have it), and the names of its METH_NOARGS functions.  None for a module
   without a PyModuleDef (pure Python, or built by other means). */
PyObject *
subinterp_module_slots(PyObject *Py_UNUSED(module), PyObject *candidate)
{
    if (!PyModule_Check(candidate)) {
        return PyErr_Format(PyExc_TypeError, "_subinterp.module_slots: expected a module, got %s",
                            Py_TYPE(candidate)->tp_name);
    }
    PyModuleDef *def = PyModule_GetDef(candidate);
    if (def == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *multiple = Py_NewRef(Py_None);
    PyObject *gil = Py_NewRef(Py_None);
    PyObject *noargs = PyList_New(0);
    PyObject *result = NULL;
    if (noargs == NULL) {
        goto error;
    }
    for (PyModuleDef_Slot *slot = def->m_slots; slot != NULL && slot->slot != 0; slot++) {
        PyObject **target = NULL;
#if SUBINTERP_HAVE_MOD_MULTIPLE_INTERPRETERS
        /* Py_mod_multiple_interpreters exists from 3.12 (PEP 684) */
        if (slot->slot == Py_mod_multiple_interpreters) {
            target = &multiple;
        }
#endif
#if SUBINTERP_HAVE_MOD_GIL
        /* Py_mod_gil exists from 3.13 (PEP 703) */
        if (slot->slot == Py_mod_gil) {
            target = &gil;
        }
#endif
        if (target != NULL) {
            PyObject *value = PyLong_FromVoidPtr(slot->value);
            if (value == NULL) {
                goto error;
            }
            Py_SETREF(*target, value);
        }
    }
    for (PyMethodDef *method = def->m_methods; method != NULL && method->ml_name != NULL;
         method++) {
        if ((method->ml_flags & METH_NOARGS) == 0) {
            continue;
        }
        PyObject *name = PyUnicode_FromString(method->ml_name);
        if (name == NULL || PyList_Append(noargs, name) < 0) {
            Py_XDECREF(name);
            goto error;
        }
        Py_DECREF(name);
    }
    result = Py_BuildValue("{s:O,s:O,s:O,s:O}", "multi_phase", def->m_slots ? Py_True : Py_False,
                           "multiple_interpreters", multiple, "gil", gil, "noargs", noargs);
error:
    Py_XDECREF(multiple);
    Py_XDECREF(gil);
    Py_XDECREF(noargs);
    return result;
}
