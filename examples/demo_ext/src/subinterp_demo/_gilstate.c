/* gilstate_ext: multi-phase, claims per-interpreter GIL support, and uses PyGILState_* from a
   native thread.

   Planted defect: PyGILState_Ensure() in a thread that Python did not create.  The PyGILState API
   always attaches to the MAIN interpreter (CPython issues 10915, 15751), so when the module is
   used from a sub-interpreter, the native thread runs in the wrong interpreter.  In the main
   interpreter it is right, so plain tests pass.

   call_in_thread([cb]) starts a pthread that does PyGILState_Ensure(), records the id of the
   interpreter it is now attached to, calls cb() if one was given, then PyGILState_Release(); the
   caller waits for it with its GIL released.  It returns the recorded interpreter id, which a test
   compares with current_interpreter_id().  The real-world bug would call cb() unconditionally;
   calling an object of one interpreter from another can crash the process, so here cb() is only
   called when the thread landed in the caller's interpreter (its exception then propagates), and
   otherwise skipped: the defect shows as a wrong id, not a crash.

   Python API:
     call_in_thread(cb=None) -> int   id of the interpreter PyGILState_Ensure attached to
     current_interpreter_id() -> int  id of the calling thread's interpreter (main: 0)

   The same file is built as subinterp_demo._gilstate by examples/demo_ext (EXT_NAME/EXT_QUALNAME
   are defined there); tests/test_extmods.py checks that the copies stay identical. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <pthread.h>

#ifndef EXT_NAME
#  define EXT_NAME gilstate_ext
#endif
#define EXT_STR_(x) #x
#define EXT_STR(x) EXT_STR_(x)
#ifndef EXT_QUALNAME
#  define EXT_QUALNAME EXT_STR(EXT_NAME)
#endif
#define EXT_INIT_(name) PyInit_##name
#define EXT_INIT(name) EXT_INIT_(name)

/* ---- exceptions between two threads of one interpreter ---- */

/* Take the current exception as one object (new reference).  PyErr_Fetch is deprecated in 3.12,
   PyErr_GetRaisedException does not exist before it. */
static PyObject *
gilstate_take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL) {
        (void)PyException_SetTraceback(value, tb); /* cannot fail for a normalized exception */
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Raise exc (steals the reference). */
static void
gilstate_raise_exception(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

/* ---- the native thread ---- */

typedef struct {
    PyObject *cb;                        /* borrowed; belongs to caller_interp; may be NULL */
    PyInterpreterState *caller_interp;   /* interpreter of the thread that called us */
    int64_t interp_id;                   /* interpreter the gilstate attached to; -1: unknown */
    PyObject *exc;                       /* cb's exception (caller_interp), or NULL */
} gilstate_call;

static void *
gilstate_thread_main(void *arg)
{
    gilstate_call *call = (gilstate_call *)arg;
    PyGILState_STATE gstate = PyGILState_Ensure(); /* DEFECT: attaches to the main interpreter */
    PyInterpreterState *interp = PyInterpreterState_Get();
    PyObject *result = NULL;

    call->interp_id = PyInterpreterState_GetID(interp);
    if (call->interp_id < 0) {
        goto error;
    }
    if (call->cb != NULL && interp == call->caller_interp) {
        result = PyObject_CallNoArgs(call->cb);
        if (result == NULL) {
            goto error;
        }
        Py_DECREF(result);
    }
    PyGILState_Release(gstate);
    return NULL;

error:
    if (interp == call->caller_interp) {
        call->exc = gilstate_take_exception(); /* re-raised by the caller */
    }
    else {
        PyErr_Clear(); /* an exception of another interpreter cannot be handed over */
        call->interp_id = -1;
    }
    PyGILState_Release(gstate);
    return NULL;
}

/* ---- module functions ---- */

static PyObject *
gilstate_call_in_thread(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    gilstate_call call = {NULL, NULL, -1, NULL};
    pthread_t thread;
    int rc;

    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "call_in_thread() takes at most 1 argument (%zd given)", nargs);
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        if (!PyCallable_Check(args[0])) {
            PyErr_Format(PyExc_TypeError, "call_in_thread: cb must be callable, not %.100s",
                         Py_TYPE(args[0])->tp_name);
            return NULL;
        }
        call.cb = args[0];
    }
    call.caller_interp = PyInterpreterState_Get();

    rc = pthread_create(&thread, NULL, gilstate_thread_main, &call);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        goto error;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        goto error;
    }
    if (call.exc != NULL) {
        gilstate_raise_exception(call.exc);
        call.exc = NULL;
        goto error;
    }
    if (call.interp_id < 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "call_in_thread: the native thread could not read its interpreter id");
        goto error;
    }
    return PyLong_FromLongLong((long long)call.interp_id);

error:
    Py_XDECREF(call.exc);
    return NULL;
}

static PyObject *
gilstate_current_interpreter_id(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    int64_t id = PyInterpreterState_GetID(PyInterpreterState_Get());
    if (id < 0) {
        return NULL;
    }
    return PyLong_FromLongLong((long long)id);
}

static PyMethodDef gilstate_methods[] = {
    {"call_in_thread", (PyCFunction)(void (*)(void))gilstate_call_in_thread, METH_FASTCALL,
     PyDoc_STR("call_in_thread(cb=None) -> id of the interpreter a PyGILState_Ensure() thread "
               "ran in; calls cb() there if it is the caller's interpreter")},
    {"current_interpreter_id", gilstate_current_interpreter_id, METH_NOARGS,
     PyDoc_STR("current_interpreter_id() -> id of the calling thread's interpreter")},
    {NULL, NULL, 0, NULL},
};

/* ---- module definition ---- */

static PyModuleDef_Slot gilstate_slots[] = {
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

static struct PyModuleDef gilstate_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = EXT_QUALNAME,
    .m_doc = PyDoc_STR("Multi-phase module that calls back from a PyGILState_Ensure() thread."),
    .m_size = 0,
    .m_methods = gilstate_methods,
    .m_slots = gilstate_slots,
};

PyMODINIT_FUNC
EXT_INIT(EXT_NAME)(void)
{
    return PyModuleDef_Init(&gilstate_module);
}
