/* interp.c: one sub-interpreter's life on its creator thread: create it (or attach to a template
   inherited from the zygote), run the entry function in it, end it.  The creator's thread state
   in the sub-interpreter is the one Py_EndInterpreter gets: it was created on this thread and is
   the interpreter's last (pybind11 subinterpreter.h; CPython issue 130501). */

#include "subinterp.h"

#include <string.h>
#include <unistd.h>

static pthread_mutex_t create_mutex = PTHREAD_MUTEX_INITIALIZER;

/* ---- create ---- */

/* Attach this native thread to the main interpreter, then create the sub-interpreter.
   On success the sub-interpreter's new thread state is current (holding its GIL) and
   *main_ts is this thread's detached main-interpreter thread state. */
int
subinterp_create(battery *b, interp_slot *slot, PyThreadState **main_ts)
{
    subinterp_set_where(slot->index, -1, -1, "create");
    double start = subinterp_now();
    /* Before 3.13, creating interpreters concurrently can crash (pybind11 serializes it too);
       legacy interpreters share one GIL, so there is nothing to gain from parallel creation.
       The mutex is taken before the GIL so that no thread waits for it while holding the GIL. */
    int serialize = !b->isolated || SUBINTERP_SERIALIZE_CREATION;
    if (serialize) {
        pthread_mutex_lock(&create_mutex);
    }
    *main_ts = subinterp_attach(b->main_interp);
    if (*main_ts == NULL) {
        if (serialize) {
            pthread_mutex_unlock(&create_mutex);
        }
        slot->create_error = subinterp_strdup("PyThreadState_New(main interpreter) failed");
        return -1;
    }

    PyThreadState *ts = NULL;
#if SUBINTERP_HAVE_CONFIG
    PyInterpreterConfig config;
    memset(&config, 0, sizeof(config));
    if (b->isolated) {
        config.use_main_obmalloc = 0;
        config.allow_fork = 0;
        config.allow_exec = 0;
        config.allow_threads = 1;
        config.allow_daemon_threads = 0;
        config.check_multi_interp_extensions = 1;
        config.gil = PyInterpreterConfig_OWN_GIL;
    }
    else {
        config.use_main_obmalloc = 1;
        config.allow_fork = 1;
        config.allow_exec = 1;
        config.allow_threads = 1;
        config.allow_daemon_threads = 1;
        config.check_multi_interp_extensions = 0;
        config.gil = PyInterpreterConfig_SHARED_GIL;
    }
    PyStatus status = Py_NewInterpreterFromConfig(&ts, &config);
    if (PyStatus_Exception(status)) {
        slot->create_error = subinterp_strdupf("Py_NewInterpreterFromConfig failed: %s%s%s",
                                               status.func ? status.func : "",
                                               status.func ? ": " : "",
                                               status.err_msg ? status.err_msg : "(no message)");
        ts = NULL;
    }
#else
    ts = Py_NewInterpreter();
    if (ts == NULL) {
        slot->create_error = subinterp_strdup("Py_NewInterpreter returned NULL");
    }
#endif
    if (ts == NULL) {
        /* Creation failed: the main thread state is still ours and current. */
        PyErr_Clear();
        subinterp_detach(*main_ts);
        *main_ts = NULL;
        if (serialize) {
            pthread_mutex_unlock(&create_mutex);
        }
        return -1;
    }
    if (serialize) {
        pthread_mutex_unlock(&create_mutex);
    }
    slot->creator_ts = ts;
    slot->interp = PyThreadState_GetInterpreter(ts);
    slot->interp_id = PyInterpreterState_GetID(slot->interp);
    slot->create_s = subinterp_now() - start;
    return 0;
}

/* ---- run ---- */

/* Run entry_module.entry_func(entry_arg, index) in the current sub-interpreter. */
void
subinterp_run_entry(battery *b, interp_slot *slot)
{
    subinterp_set_where(slot->index, -1, -1, "import");
    double start = subinterp_now();
    PyObject *module = PyImport_ImportModule(b->entry_module);
    PyObject *func = module ? PyObject_GetAttrString(module, b->entry_func) : NULL;
    PyObject *result = func ? PyObject_CallFunction(func, "si", b->entry_arg, slot->index) : NULL;
    if (result == NULL) {
        slot->entry_error = subinterp_fetch_exception_text();
    }
    else if (!PyUnicode_Check(result)) {
        slot->entry_error = subinterp_strdupf("%s.%s returned a non-str", b->entry_module,
                                              b->entry_func);
    }
    else {
        const char *utf8 = PyUnicode_AsUTF8(result);
        if (utf8 == NULL) {
            slot->entry_error = subinterp_fetch_exception_text();
        }
        else {
            slot->entry_output = subinterp_strdup(utf8);
        }
    }
    Py_XDECREF(result);
    Py_XDECREF(func);
    Py_XDECREF(module);
    slot->run_s = subinterp_now() - start;
}

/* ---- attach to a template ---- */

/* Template interpreters were created (and had pytest imported) in the zygote, which then
   dropped their thread states and forked this process without PyOS_AfterFork_Child (which
   would delete them).  This creator thread attaches to one with the foreign-thread sequence
   (subinterp_attach); from here on it is the interpreter's creator: it runs the entry and ends
   it. */
int
subinterp_attach_template(battery *Py_UNUSED(b), interp_slot *slot)
{
    subinterp_set_where(slot->index, -1, -1, "attach");
    double start = subinterp_now();
    PyThreadState *ts = subinterp_attach(slot->template_interp);
    if (ts == NULL) {
        slot->create_error = subinterp_strdup("PyThreadState_New(template interpreter) failed");
        return -1;
    }
    /* Now that this thread state keeps the list non-empty, drop the zygote's placeholder:
       Py_EndInterpreter needs the creator's to be the last one. */
    PyThreadState_Clear(slot->template_placeholder);
    PyThreadState_Delete(slot->template_placeholder);
    slot->template_placeholder = NULL;
    slot->creator_ts = ts;
    slot->interp = slot->template_interp;
    slot->interp_id = PyInterpreterState_GetID(slot->interp);
    slot->create_s = subinterp_now() - start;
    return 0;
}

/* ---- end ---- */

/* Count the thread states of the current interpreter other than the creator's. */
static int
subinterp_other_thread_states(interp_slot *slot)
{
    int others = 0;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(slot->interp); ts != NULL;
         ts = PyThreadState_Next(ts)) {
        if (ts != slot->creator_ts) {
            others++;
        }
    }
    return others;
}

/* End the interpreter from the thread that created it, with the creator's thread state
   current; then return to the main interpreter and drop this thread's main thread state. */
void
subinterp_end(battery *Py_UNUSED(b), interp_slot *slot, PyThreadState *main_ts)
{
    subinterp_set_where(slot->index, -1, -1, "end");
    double start = subinterp_now();
    int others = subinterp_other_thread_states(slot);
    /* A thread that the test joined may still be deleting its thread state: give it a moment. */
    for (int tries = 0; others > 0 && tries < 50; tries++) {
        Py_BEGIN_ALLOW_THREADS
        usleep(10000);
        Py_END_ALLOW_THREADS
        others = subinterp_other_thread_states(slot);
    }
    if (others > 0) {
        /* Py_EndInterpreter would abort the process ("not the last thread"): leave the
           interpreter alive, report it, and let the disposable child process exit. */
        slot->end_error = subinterp_strdupf(
            "interpreter %d still had %d other thread state(s) alive after the test: a thread "
            "was left running (or a native thread never detached); it was not ended",
            slot->index + 1, others);
        PyEval_SaveThread();
    }
    else {
        Py_EndInterpreter(slot->creator_ts); /* returns with no current thread state */
        slot->ended = 1;
    }
    slot->creator_ts = NULL;
    slot->end_s = subinterp_now() - start;
    subinterp_breadcrumb("done end interp=%d ended=%d", slot->index, slot->ended);

    if (main_ts == NULL) {
        /* A template's creator never had a main-interpreter thread state (3.12+ only):
           Py_EndInterpreter left no thread state current; PyEval_SaveThread detached ours. */
        return;
    }
#if SUBINTERP_END_RETURNS_WITH_GIL
    if (slot->ended) {
        /* Before 3.12 Py_EndInterpreter returns still holding the (single, shared) GIL:
           make the main thread state current without acquiring it again. */
        PyThreadState_Swap(main_ts);
        subinterp_detach(main_ts);
        return;
    }
#endif
    /* 3.12+: Py_EndInterpreter returns with no GIL held (documented). */
    PyEval_RestoreThread(main_ts);
    subinterp_detach(main_ts);
}
