/* module.c: the process state and the module definition of pytest_subinterp._subinterp.
   PyInit__subinterp is the only exported symbol (subinterp.h: SUBINTERP_INTERNAL). */

#include "subinterp.h"

/* ---- process state ---- */

/* See subinterp.h for why this is process-global rather than module state. */
battery *subinterp_current_battery = NULL;
int subinterp_progress_fd = -1;
template_t subinterp_templates[2][SUBINTERP_MAX_TEMPLATES];
int subinterp_templates_held[2];
__thread where_t subinterp_here = {-1, -1, -1, NULL};

/* ---- module definition ---- */

static PyMethodDef subinterp_methods[] = {
    {"run_battery", (PyCFunction)(void (*)(void))subinterp_run_battery,
     METH_VARARGS | METH_KEYWORDS, subinterp_run_battery_doc},
    {"make_templates", subinterp_make_templates, METH_VARARGS, subinterp_make_templates_doc},
    {"template_count", subinterp_template_count, METH_VARARGS,
     "template_count(config) -> int: template interpreters of that config this process holds."},
    {"fork_keeping_templates", subinterp_fork_keeping_templates, METH_NOARGS,
     subinterp_fork_keeping_templates_doc},
    {"populate_memory", subinterp_populate_memory, METH_NOARGS,
     "populate_memory() -> int: copy every private writable page now (Linux; else 0); returns\n"
     "the bytes populated."},
    {"process_environ", subinterp_process_environ, METH_NOARGS,
     "process_environ() -> dict[bytes, bytes]: the process environment as it is now."},
    {"call_point", subinterp_call_point, METH_O, subinterp_call_point_doc},
    {"barrier", subinterp_barrier, METH_NOARGS, subinterp_barrier_doc},
    {"set_phase", subinterp_set_phase, METH_VARARGS,
     "set_phase(phase): record the current phase for crash reports."},
    {"interpreter_index", subinterp_interpreter_index, METH_NOARGS,
     "interpreter_index() -> int: index of this interpreter in the running battery, or -1."},
    {"breadcrumb", subinterp_breadcrumb_py, METH_VARARGS,
     "breadcrumb(text): write one line to the battery's progress file."},
    {"is_single_phase", subinterp_is_single_phase, METH_O,
     "is_single_phase(module) -> bool: True for an extension module made by PyModule_Create\n"
     "(or CPython's copy of one); pass extension modules only."},
    {"module_slots", subinterp_module_slots, METH_O,
     "module_slots(module) -> dict | None: multi_phase, Py_mod_multiple_interpreters and "
     "Py_mod_gil slot values, METH_NOARGS function names of the module's PyModuleDef."},
    {"install_crash_handler", subinterp_install_crash_handler, METH_VARARGS,
     "install_crash_handler(fd): write crash and hang reports to fd (process-wide)."},
    {"set_parent_death_signal", subinterp_set_parent_death_signal, METH_VARARGS,
     subinterp_set_parent_death_signal_doc},
    {NULL, NULL, 0, NULL},
};

static int
subinterp_exec(PyObject *module)
{
    if (PyModule_AddIntConstant(module, "CALL_PASSED", CALL_PASSED) < 0 ||
        PyModule_AddIntConstant(module, "CALL_FAILED", CALL_FAILED) < 0 ||
        PyModule_AddIntConstant(module, "CALL_NOT_RUN", CALL_NOT_RUN) < 0 ||
        PyModule_AddIntConstant(module, "CALL_ERROR", CALL_ERROR) < 0 ||
        PyModule_AddIntConstant(module, "HAVE_ISOLATED", SUBINTERP_HAVE_CONFIG) < 0 ||
        PyModule_AddIntConstant(module, "EXIT_HUNG_GIL_HELD", SUBINTERP_EXIT_HUNG_GIL_HELD) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot subinterp_slots[] = {
    {Py_mod_exec, subinterp_exec},
#if SUBINTERP_HAVE_MOD_MULTIPLE_INTERPRETERS
    /* The helper itself must load in the isolated interpreters it creates. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if SUBINTERP_HAVE_MOD_GIL
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef subinterp_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pytest_subinterp._subinterp",
    .m_doc = "Run a test body in fresh sub-interpreters from native threads.",
    .m_size = 0,
    .m_methods = subinterp_methods,
    .m_slots = subinterp_slots,
};

PyMODINIT_FUNC
PyInit__subinterp(void)
{
    return PyModuleDef_Init(&subinterp_module);
}
