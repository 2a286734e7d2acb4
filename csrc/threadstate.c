/* threadstate.c: the one attach/detach pair of the helper, and a scoped activation built on it.

   Every place that gives an OS thread a thread state of some interpreter, or takes one away,
   calls these (see subinterp.h for the sequences).  Rules they encode: no PyGILState_* with
   sub-interpreters (it attaches to the main interpreter, CPython issues 10915/15751); a thread
   state is created, cleared and deleted on one OS thread and never moved to another (moving one
   deadlocked 3.13, CPython issue 130501); the previously current thread state is restored on
   every path (pybind11 subinterpreter.h, scoped_activate). */

#include "subinterp.h"

/* ---- attach / detach ---- */

/* Attach: the documented sequence for a thread that Python did not create.  Creates a thread
   state of `interp` for this OS thread and makes it current, taking the interpreter's GIL.
   This thread must have no current thread state.  NULL (no exception: there may be no thread
   state to set one in) when the thread state could not be created. */
PyThreadState *
subinterp_attach(PyInterpreterState *interp)
{
    PyThreadState *ts = PyThreadState_New(interp);
    if (ts == NULL) {
        return NULL;
    }
    PyEval_RestoreThread(ts);
    return ts;
}

/* Detach: `ts` must be this thread's current thread state.  Clear it while still attached (its
   frames and objects are released in its own interpreter), then delete the current thread state
   and drop the GIL: afterwards this thread has no current thread state. */
void
subinterp_detach(PyThreadState *ts)
{
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
}

/* ---- scoped activation ---- */

/* Run body(ts, arg) on this OS thread with a new thread state `ts` of `interp` current, then
   detach it and make `previous` current again, on every path: the body cannot leave this thread
   attached to the wrong interpreter.  `previous` is this thread's current thread state, or NULL
   when it has none; the caller says which, because the helper cannot ask: on 3.10 and 3.11 the
   "current" thread state (_PyThreadState_UncheckedGet) is the process's GIL holder, which may be
   another thread's (thread-local current thread states came with 3.12).  A previous thread state
   is detached first (PyEval_SaveThread releases its GIL, which matters when the two interpreters
   have different GILs).  Returns 0, or -1 if no thread state could be created (the body did not
   run; `previous` is current again). */
int
subinterp_run_attached(PyThreadState *previous, PyInterpreterState *interp,
                       subinterp_attached_fn body, void *arg)
{
    if (previous != NULL) {
        PyEval_SaveThread();
    }
    PyThreadState *ts = subinterp_attach(interp);
    if (ts != NULL) {
        body(ts, arg);
        subinterp_detach(ts);
    }
    if (previous != NULL) {
        PyEval_RestoreThread(previous);
    }
    return ts != NULL ? 0 : -1;
}
