/* _subinterp: run a test body in fresh sub-interpreters from native ("foreign") threads.

   Python equivalent and signatures: pytest_subinterp/_subinterp.pyi.
   Order: create -> run entry (inner pytest) -> rendezvous -> attach -> call -> detach -> end.

   One battery runs per process at a time (the process is a disposable child of the plugin's
   zygote), so the battery is process-global C state shared by every interpreter; Python
   objects never cross interpreters: results cross as C strings.

   Thread-state sequences follow the C-API documentation (see shared/seed):
     foreign thread:  ts = PyThreadState_New(interp); PyEval_RestoreThread(ts); ... work ...;
                      PyThreadState_Clear(ts); PyThreadState_DeleteCurrent();
     creator thread:  attach to the main interpreter, Py_NewInterpreter[FromConfig], run, then
                      Py_EndInterpreter(ts) with the creator's own thread state current.  */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if PY_VERSION_HEX >= 0x030C0000
#define SUBINTERP_HAVE_CONFIG 1 /* Py_NewInterpreterFromConfig and own-GIL interpreters */
#else
#define SUBINTERP_HAVE_CONFIG 0
#endif

#if PY_VERSION_HEX < 0x030D0000
/* Exported (PyAPI_FUNC) but declared only in the internal headers of 3.11/3.12; 3.13 stopped
   exporting them, so the crash handler falls back to the breadcrumb and the native stack. */
PyAPI_FUNC(void) _Py_DumpTraceback(int fd, PyThreadState *tstate);
#define SUBINTERP_CAN_DUMP_CRASHING_THREAD 1
#else
#define SUBINTERP_CAN_DUMP_CRASHING_THREAD 0
#endif

/* ---- results ---- */

enum { CALL_PASSED = 0, CALL_FAILED = 1, CALL_NOT_RUN = 2, CALL_ERROR = 3 };

typedef struct {
    int generation; /* which rendezvous (one per test in module scope) */
    int thread;
    int round;
    int interp;
    int status;
    char *text; /* failure text, malloc'd, or NULL */
    double seconds;
} call_record;

enum { SLOT_CREATING, SLOT_RUNNING, SLOT_DONE };

typedef struct {
    int index;
    int state;
    PyInterpreterState *interp;
    int64_t interp_id;
    PyThreadState *creator_ts;   /* the creator's thread state in the sub-interpreter */
    int arrived_generation;      /* last rendezvous this interpreter arrived at */
    int barrier_generation;      /* last barrier() this interpreter arrived at */
    PyObject *fn;                /* callable of this interpreter for the armed generation */
    char *create_error;
    char *entry_output;          /* str returned by the entry function */
    char *entry_error;           /* traceback of the entry function, if it raised */
    char *end_error;
    int ended;
    PyInterpreterState *template_interp; /* attach to this inherited template instead of creating */
    PyThreadState *template_placeholder; /* its placeholder thread state, deleted on attach */
    double create_s, run_s, end_s;
} interp_slot;

typedef struct {
    int isolated;
    int n_interps, n_threads, n_rounds;
    char *entry_module, *entry_func, *entry_arg;
    PyInterpreterState *main_interp;
    interp_slot *slots;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int armed_generation;    /* every interpreter arrived (or is done) for this one */
    int finished_generation; /* every worker finished this one */
    int workers_in_generation;
    int all_done;            /* every creator finished its entry function */
    int creators_exited, workers_exited;

    call_record *records;
    size_t n_records, cap_records;

    PyThreadState **worker_ts; /* current thread state of each worker, for hang dumps */
    pthread_t *creator_threads, *worker_threads;
    int n_creators_started, n_workers_started;
} battery;

static battery *current_battery = NULL;
static pthread_mutex_t create_mutex = PTHREAD_MUTEX_INITIALIZER;
static int progress_fd = -1;

/* Template interpreters, by config (0 legacy, 1 isolated): created in the zygote, inherited by
   each forked child, which attaches to them and ends them (see make_templates). */
#define SUBINTERP_MAX_TEMPLATES 64
typedef struct {
    PyInterpreterState *interp;
    /* A thread state that keeps the interpreter's list of thread states non-empty: CPython
       3.12.1 aborts ("init_threadstate: thread state already initialized") when a thread state
       is created for an interpreter whose list went empty, because it reuses the interpreter's
       embedded first thread state without resetting it. */
    PyThreadState *placeholder;
} template_t;
static template_t template_store[2][SUBINTERP_MAX_TEMPLATES];
static int template_count[2];

/* Per-OS-thread breadcrumb read by the crash handler: where this thread is right now. */
typedef struct {
    int interp, thread, round;
    const char *phase;
} where_t;
static __thread where_t here = {-1, -1, -1, NULL};

/* ---- breadcrumbs ---- */

static double
subinterp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One line, written with a single write() so lines from threads never interleave; the parent
   reads the file after a crash, so nothing may sit in a user-space buffer. */
static void
subinterp_breadcrumb(const char *fmt, ...)
{
    if (progress_fd < 0) {
        return;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if (n > (int)sizeof(line) - 2) {
        n = (int)sizeof(line) - 2;
    }
    line[n++] = '\n';
    ssize_t ignored = write(progress_fd, line, (size_t)n);
    (void)ignored;
}

static void
subinterp_set_where(int interp, int thread, int round, const char *phase)
{
    here.interp = interp;
    here.thread = thread;
    here.round = round;
    here.phase = phase;
    subinterp_breadcrumb("phase %s interp=%d thread=%d round=%d", phase, interp, thread, round);
}

static char *
subinterp_strdup(const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

static char *
subinterp_strdupf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return subinterp_strdup(buf);
}

/* Format the pending exception of the current interpreter as text and clear it.  Uses the
   interpreter's own traceback module; falls back to str(exc). */
static char *
subinterp_fetch_exception_text(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return subinterp_strdup("(no exception set)");
    }
    PyErr_NormalizeException(&type, &value, &tb);
    char *text = NULL;
    PyObject *traceback = PyImport_ImportModule("traceback");
    if (traceback != NULL) {
        PyObject *lines = PyObject_CallMethod(traceback, "format_exception", "OOO", type,
                                              value ? value : Py_None, tb ? tb : Py_None);
        if (lines != NULL) {
            PyObject *empty = PyUnicode_FromString("");
            PyObject *joined = empty ? PyUnicode_Join(empty, lines) : NULL;
            if (joined != NULL) {
                const char *utf8 = PyUnicode_AsUTF8(joined);
                text = utf8 ? subinterp_strdup(utf8) : NULL;
            }
            Py_XDECREF(joined);
            Py_XDECREF(empty);
            Py_DECREF(lines);
        }
        Py_DECREF(traceback);
    }
    PyErr_Clear();
    if (text == NULL) {
        PyObject *s = value ? PyObject_Str(value) : NULL;
        const char *utf8 = s ? PyUnicode_AsUTF8(s) : NULL;
        text = subinterp_strdup(utf8 ? utf8 : "(exception could not be formatted)");
        Py_XDECREF(s);
        PyErr_Clear();
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return text;
}

/* ---- results ---- */

static void
subinterp_add_record(battery *b, call_record rec)
{
    /* caller holds b->mu */
    if (b->n_records == b->cap_records) {
        size_t cap = b->cap_records ? b->cap_records * 2 : 64;
        call_record *grown = realloc(b->records, cap * sizeof(call_record));
        if (grown == NULL) {
            free(rec.text);
            return;
        }
        b->records = grown;
        b->cap_records = cap;
    }
    b->records[b->n_records++] = rec;
}

/* ---- rendezvous ---- */

/* Arm the next generation once every interpreter has arrived at it or is done for good.
   Caller holds b->mu. */
static void
subinterp_maybe_arm(battery *b)
{
    int next = b->armed_generation + 1;
    if (b->finished_generation < b->armed_generation) {
        return; /* workers are still busy with the armed one */
    }
    int any_arrived = 0;
    for (int i = 0; i < b->n_interps; i++) {
        interp_slot *s = &b->slots[i];
        if (s->state == SLOT_DONE) {
            continue;
        }
        if (s->arrived_generation < next) {
            return;
        }
        any_arrived = 1;
    }
    if (any_arrived) {
        b->armed_generation = next;
        b->workers_in_generation = 0;
        pthread_cond_broadcast(&b->cv);
    }
}

/* ---- attach / detach ---- */

/* Run fn(thread, round) once in slot's interpreter on this foreign thread. */
static call_record
subinterp_call_in(battery *b, interp_slot *slot, PyObject *fn, int t, int j, int generation)
{
    call_record rec = {generation, t, j, slot->index, CALL_PASSED, NULL, 0.0};
    subinterp_set_where(slot->index, t, j, "call");
    double start = subinterp_now();

    /* attach: documented sequence for a thread that Python did not create */
    PyThreadState *ts = PyThreadState_New(slot->interp);
    if (ts == NULL) {
        rec.status = CALL_ERROR;
        rec.text = subinterp_strdupf("PyThreadState_New failed for interpreter %d", slot->index);
        return rec;
    }
    PyEval_RestoreThread(ts);
    b->worker_ts[t] = ts;

    PyObject *result = PyObject_CallFunction(fn, "ii", t, j);
    if (result == NULL) {
        rec.status = CALL_ERROR;
        rec.text = subinterp_fetch_exception_text();
    }
    else if (result != Py_None) {
        rec.status = CALL_FAILED;
        const char *utf8 = PyUnicode_Check(result) ? PyUnicode_AsUTF8(result) : NULL;
        rec.text = subinterp_strdup(utf8 ? utf8 : "(test body failed)");
        PyErr_Clear();
    }
    Py_XDECREF(result);

    /* detach: clear while attached, then delete the current thread state and drop the GIL */
    b->worker_ts[t] = NULL;
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();

    rec.seconds = subinterp_now() - start;
    subinterp_breadcrumb("done call interp=%d thread=%d round=%d status=%d", slot->index, t, j,
                         rec.status);
    here.phase = "idle";
    return rec;
}

/* What a battery thread (worker or creator) is started with. */
typedef struct {
    battery *b;
    int index;
} thread_arg;

static void *
subinterp_worker_main(void *raw)
{
    thread_arg *arg = raw;
    battery *b = arg->b;
    int t = arg->index;
    free(arg);
    here.thread = t;
    for (int generation = 1;; generation++) {
        pthread_mutex_lock(&b->mu);
        while (b->armed_generation < generation && !b->all_done) {
            pthread_cond_wait(&b->cv, &b->mu);
        }
        int run = b->armed_generation >= generation;
        pthread_mutex_unlock(&b->mu);
        if (!run) {
            break;
        }
        for (int j = 0; j < b->n_rounds; j++) {
            interp_slot *slot = &b->slots[(t + j) % b->n_interps];
            call_record rec = {generation, t, j, slot->index, CALL_NOT_RUN, NULL, 0.0};
            PyObject *fn = NULL;
            pthread_mutex_lock(&b->mu);
            if (slot->arrived_generation == generation && slot->state != SLOT_DONE) {
                fn = slot->fn; /* borrowed: the creator holds it until the generation ends */
            }
            pthread_mutex_unlock(&b->mu);
            if (fn != NULL) {
                rec = subinterp_call_in(b, slot, fn, t, j, generation);
            }
            pthread_mutex_lock(&b->mu);
            subinterp_add_record(b, rec);
            pthread_mutex_unlock(&b->mu);
        }
        pthread_mutex_lock(&b->mu);
        if (++b->workers_in_generation == b->n_threads) {
            b->finished_generation = generation;
            pthread_cond_broadcast(&b->cv);
            subinterp_maybe_arm(b);
        }
        pthread_mutex_unlock(&b->mu);
    }
    pthread_mutex_lock(&b->mu);
    b->workers_exited++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- create ---- */

/* Attach this native thread to the main interpreter, then create the sub-interpreter.
   On success the sub-interpreter's new thread state is current (holding its GIL) and
   *main_ts is this thread's detached main-interpreter thread state. */
static int
subinterp_create(battery *b, interp_slot *slot, PyThreadState **main_ts)
{
    subinterp_set_where(slot->index, -1, -1, "create");
    double start = subinterp_now();
    /* Before 3.13, creating interpreters concurrently can crash (pybind11 serializes it too);
       legacy interpreters share one GIL, so there is nothing to gain from parallel creation.
       The mutex is taken before the GIL so that no thread waits for it while holding the GIL. */
    int serialize = !b->isolated || PY_VERSION_HEX < 0x030D0000;
    if (serialize) {
        pthread_mutex_lock(&create_mutex);
    }
    *main_ts = PyThreadState_New(b->main_interp);
    if (*main_ts == NULL) {
        if (serialize) {
            pthread_mutex_unlock(&create_mutex);
        }
        slot->create_error = subinterp_strdup("PyThreadState_New(main interpreter) failed");
        return -1;
    }
    PyEval_RestoreThread(*main_ts);

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
        PyThreadState_Clear(*main_ts);
        PyThreadState_DeleteCurrent();
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
static void
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

/* ---- end ---- */

/* ---- attach to a template ---- */

/* Template interpreters were created (and had pytest imported) in the zygote, which then
   dropped their thread states and forked this process without PyOS_AfterFork_Child (which
   would delete them).  This creator thread attaches to one with the foreign-thread sequence;
   from here on it is the interpreter's creator: it runs the entry and ends it. */
static int
subinterp_attach_template(battery *b, interp_slot *slot)
{
    subinterp_set_where(slot->index, -1, -1, "attach");
    double start = subinterp_now();
    PyThreadState *ts = PyThreadState_New(slot->template_interp);
    if (ts == NULL) {
        slot->create_error = subinterp_strdup("PyThreadState_New(template interpreter) failed");
        return -1;
    }
    PyEval_RestoreThread(ts);
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
static void
subinterp_end(battery *b, interp_slot *slot, PyThreadState *main_ts)
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
#if PY_VERSION_HEX < 0x030C0000
    if (slot->ended) {
        /* Before 3.12 Py_EndInterpreter returns still holding the (single, shared) GIL:
           make the main thread state current without acquiring it again. */
        PyThreadState_Swap(main_ts);
        PyThreadState_Clear(main_ts);
        PyThreadState_DeleteCurrent();
        return;
    }
#endif
    /* 3.12+: Py_EndInterpreter returns with no GIL held (documented). */
    PyEval_RestoreThread(main_ts);
    PyThreadState_Clear(main_ts);
    PyThreadState_DeleteCurrent();
}

static void
subinterp_mark_done(battery *b, interp_slot *slot)
{
    pthread_mutex_lock(&b->mu);
    slot->state = SLOT_DONE;
    int all = 1;
    for (int i = 0; i < b->n_interps; i++) {
        if (b->slots[i].state != SLOT_DONE) {
            all = 0;
        }
    }
    subinterp_maybe_arm(b);
    if (all) {
        b->all_done = 1;
    }
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void *
subinterp_creator_main(void *raw)
{
    thread_arg *arg = raw;
    battery *b = arg->b;
    interp_slot *slot = &b->slots[arg->index];
    free(arg);
    PyThreadState *main_ts = NULL;
    int ready = slot->template_interp != NULL ? subinterp_attach_template(b, slot)
                                               : subinterp_create(b, slot, &main_ts);
    if (ready == 0) {
        pthread_mutex_lock(&b->mu);
        slot->state = SLOT_RUNNING;
        pthread_mutex_unlock(&b->mu);
        subinterp_run_entry(b, slot);
        subinterp_mark_done(b, slot);
        subinterp_end(b, slot, main_ts);
    }
    else {
        subinterp_breadcrumb("failed create interp=%d", slot->index);
        subinterp_mark_done(b, slot);
    }
    pthread_mutex_lock(&b->mu);
    b->creators_exited++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- hang dump ---- */

static void
subinterp_write_frames(PyThreadState *ts)
{
    PyFrameObject *frame = PyThreadState_GetFrame(ts); /* new reference or NULL */
    int depth = 0;
    while (frame != NULL && depth < 100) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        const char *file = PyUnicode_AsUTF8(code->co_filename);
        const char *name = PyUnicode_AsUTF8(code->co_name);
        subinterp_breadcrumb("stack   File \"%s\", line %d, in %s", file ? file : "?",
                             PyFrame_GetLineNumber(frame), name ? name : "?");
        Py_DECREF(code);
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
        depth++;
    }
    Py_XDECREF(frame);
    PyErr_Clear();
}

typedef struct {
    battery *b;
    int i;
    int finished;
} dumper_arg;

/* Attach to one interpreter and write the Python stack of each of its threads.  Holding that
   interpreter's GIL means its other threads are not running, so their frames are stable. */
static void *
subinterp_dumper_main(void *raw)
{
    dumper_arg *arg = raw;
    battery *b = arg->b;
    interp_slot *slot = &b->slots[arg->i];
    PyThreadState *ts = PyThreadState_New(slot->interp);
    if (ts != NULL) {
        PyEval_RestoreThread(ts);
        for (PyThreadState *other = PyInterpreterState_ThreadHead(slot->interp); other != NULL;
             other = PyThreadState_Next(other)) {
            if (other == ts) {
                continue;
            }
            const char *who = "python thread";
            char label[64];
            if (other == slot->creator_ts) {
                who = "creator thread (fixtures / inner pytest)";
            }
            for (int t = 0; t < b->n_threads; t++) {
                if (b->worker_ts[t] == other) {
                    snprintf(label, sizeof(label), "battery thread %d/%d", t + 1, b->n_threads);
                    who = label;
                }
            }
            subinterp_breadcrumb("stack interpreter %d, %s (thread state %llu), most recent call first:", slot->index + 1,
                                 who, (unsigned long long)PyThreadState_GetID(other));
            subinterp_write_frames(other);
        }
        PyThreadState_Clear(ts);
        PyThreadState_DeleteCurrent();
    }
    pthread_mutex_lock(&b->mu);
    arg->finished = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void
subinterp_dump_all_stacks(battery *b)
{
    for (int i = 0; i < b->n_interps; i++) {
        interp_slot *slot = &b->slots[i];
        if (slot->interp == NULL || slot->ended) {
            continue;
        }
        subinterp_breadcrumb("stack ---- interpreter %d/%d (%s) ----", i + 1, b->n_interps,
                             b->isolated ? "isolated" : "legacy");
        /* The dumper is detached and leaked on purpose: if a thread holds the interpreter's GIL
           forever, attaching never returns, and the child process is about to exit anyway. */
        dumper_arg *arg = calloc(1, sizeof(dumper_arg));
        if (arg == NULL) {
            continue;
        }
        arg->b = b;
        arg->i = i;
        pthread_t thread;
        if (pthread_create(&thread, NULL, subinterp_dumper_main, arg) != 0) {
            continue;
        }
        pthread_detach(thread);
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 2;
        pthread_mutex_lock(&b->mu);
        while (!arg->finished) {
            if (pthread_cond_timedwait(&b->cv, &b->mu, &deadline) == ETIMEDOUT) {
                break;
            }
        }
        int finished = arg->finished;
        pthread_mutex_unlock(&b->mu);
        if (!finished) {
            subinterp_breadcrumb("stack interpreter %d: its GIL was not released within 2 s (a "
                                 "thread holds it: a deadlock or a long C call with the GIL held)",
                                 i + 1);
        }
    }
}

/* ---- crash handler ---- */

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

static const char *
subinterp_signal_name(int sig)
{
    switch (sig) {
        case SIGSEGV: return "SIGSEGV";
        case SIGBUS: return "SIGBUS";
        case SIGFPE: return "SIGFPE";
        case SIGILL: return "SIGILL";
        case SIGABRT: return "SIGABRT";
        default: return "signal";
    }
}

static volatile sig_atomic_t crashing = 0;

/* Async-signal-safe pieces of the crash line: no stdio, no malloc. */
static size_t
subinterp_append(char *buf, size_t pos, size_t cap, const char *text)
{
    while (*text && pos + 1 < cap) {
        buf[pos++] = *text++;
    }
    return pos;
}

static size_t
subinterp_append_int(char *buf, size_t pos, size_t cap, int value)
{
    char digits[16];
    int n = 0;
    unsigned int magnitude = value < 0 ? (unsigned int)(-(long)value) : (unsigned int)value;
    do {
        digits[n++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude && n < (int)sizeof(digits));
    if (value < 0 && pos + 1 < cap) {
        buf[pos++] = '-';
    }
    while (n > 0 && pos + 1 < cap) {
        buf[pos++] = digits[--n];
    }
    return pos;
}

static const char *subinterp_signal_name(int sig);

static void
subinterp_signal_safe_crash_line(int sig)
{
    if (progress_fd < 0) {
        return;
    }
    char line[256];
    size_t pos = 0, cap = sizeof(line);
    pos = subinterp_append(line, pos, cap, "crash ");
    pos = subinterp_append(line, pos, cap, subinterp_signal_name(sig));
    pos = subinterp_append(line, pos, cap, " interp=");
    pos = subinterp_append_int(line, pos, cap, here.interp);
    pos = subinterp_append(line, pos, cap, " thread=");
    pos = subinterp_append_int(line, pos, cap, here.thread);
    pos = subinterp_append(line, pos, cap, " round=");
    pos = subinterp_append_int(line, pos, cap, here.round);
    pos = subinterp_append(line, pos, cap, " phase=");
    pos = subinterp_append(line, pos, cap, here.phase ? here.phase : "?");
    line[pos++] = '\n';
    ssize_t ignored = write(progress_fd, line, pos);
    (void)ignored;
}

static void
subinterp_fatal_handler(int sig)
{
    /* Only the first crashing thread reports; others (several threads often hit the same bug)
       wait here until it ends the process, so that the report is not interleaved. */
    if (__sync_lock_test_and_set(&crashing, 1)) {
        for (;;) {
            pause();
        }
    }
    /* A handler that deadlocks (e.g. the crash happened inside malloc) must not turn a crash
       into a hang: SIGALRM's default action ends the process in 3 s at the latest. */
    alarm(3);
    subinterp_signal_safe_crash_line(sig);
    /* A signal sent to the whole process (kill) lands on any thread, often the child's waiting
       main thread: its stacks say nothing, and the steps in flight are in the breadcrumbs. */
    int battery_thread = here.interp >= 0 || here.thread >= 0;
    if (progress_fd >= 0 && battery_thread) {
        static const char native[] = "native-stack-begin\n";
        ssize_t ignored = write(progress_fd, native, sizeof(native) - 1);
        void *frames[64];
        int n = backtrace(frames, 64);
        backtrace_symbols_fd(frames, n, progress_fd);
        static const char end[] = "native-stack-end\n";
        ignored = write(progress_fd, end, sizeof(end) - 1);
#if SUBINTERP_CAN_DUMP_CRASHING_THREAD
        PyThreadState *ts = _PyThreadState_UncheckedGet();
        if (ts != NULL) {
            static const char py[] = "python-stack-begin\n";
            ignored = write(progress_fd, py, sizeof(py) - 1);
            _Py_DumpTraceback(progress_fd, ts);
            static const char pyend[] = "python-stack-end\n";
            ignored = write(progress_fd, pyend, sizeof(pyend) - 1);
        }
#endif
        (void)ignored;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static PyObject *
subinterp_install_crash_handler(PyObject *module, PyObject *args)
{
    int fd;
    if (!PyArg_ParseTuple(args, "i:install_crash_handler", &fd)) {
        return NULL;
    }
    progress_fd = fd;
    /* backtrace() loads libgcc lazily: do it now, not inside a signal handler. */
    void *frames[2];
    (void)backtrace(frames, 2);
    static char alt_stack[1 << 16];
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof(alt_stack), .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    for (size_t k = 0; k < sizeof(fatal_signals) / sizeof(fatal_signals[0]); k++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = subinterp_fatal_handler;
        sa.sa_flags = SA_NODEFER | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(fatal_signals[k], &sa, NULL) != 0) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    Py_RETURN_NONE;
}

/* ---- battery (main interpreter entry point) ---- */

static void
subinterp_battery_free(battery *b)
{
    for (int i = 0; i < b->n_interps; i++) {
        free(b->slots[i].create_error);
        free(b->slots[i].entry_output);
        free(b->slots[i].entry_error);
        free(b->slots[i].end_error);
    }
    for (size_t k = 0; k < b->n_records; k++) {
        free(b->records[k].text);
    }
    free(b->records);
    free(b->slots);
    free(b->worker_ts);
    free(b->creator_threads);
    free(b->worker_threads);
    free(b->entry_module);
    free(b->entry_func);
    free(b->entry_arg);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}

static int
subinterp_dict_set(PyObject *dict, const char *key, PyObject *value)
{
    if (value == NULL) {
        return -1;
    }
    int rc = PyDict_SetItemString(dict, key, value);
    Py_DECREF(value);
    return rc;
}

static PyObject *
subinterp_optional_str(const char *s)
{
    if (s == NULL) {
        Py_RETURN_NONE;
    }
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

static PyObject *
subinterp_slot_to_dict(battery *b, interp_slot *s)
{
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    if (subinterp_dict_set(d, "index", PyLong_FromLong(s->index)) < 0 ||
        subinterp_dict_set(d, "id", PyLong_FromLongLong(s->interp_id)) < 0 ||
        subinterp_dict_set(d, "created", PyBool_FromLong(s->interp != NULL)) < 0 ||
        subinterp_dict_set(d, "ended", PyBool_FromLong(s->ended)) < 0 ||
        subinterp_dict_set(d, "create_error", subinterp_optional_str(s->create_error)) < 0 ||
        subinterp_dict_set(d, "entry_output", subinterp_optional_str(s->entry_output)) < 0 ||
        subinterp_dict_set(d, "entry_error", subinterp_optional_str(s->entry_error)) < 0 ||
        subinterp_dict_set(d, "end_error", subinterp_optional_str(s->end_error)) < 0 ||
        subinterp_dict_set(d, "create_s", PyFloat_FromDouble(s->create_s)) < 0 ||
        subinterp_dict_set(d, "run_s", PyFloat_FromDouble(s->run_s)) < 0 ||
        subinterp_dict_set(d, "end_s", PyFloat_FromDouble(s->end_s)) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *
subinterp_record_to_tuple(call_record *r)
{
    PyObject *text = subinterp_optional_str(r->text);
    if (text == NULL) {
        return NULL;
    }
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:N,s:d}", "generation", r->generation, "thread",
                         r->thread, "round", r->round, "interpreter", r->interp, "status",
                         r->status, "text", text, "seconds", r->seconds);
}

static PyObject *
subinterp_battery_result(battery *b, int hung, double wall)
{
    PyObject *result = PyDict_New();
    PyObject *interps = PyList_New(0);
    PyObject *calls = PyList_New(0);
    if (result == NULL || interps == NULL || calls == NULL) {
        goto error;
    }
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->n_interps; i++) {
        PyObject *d = subinterp_slot_to_dict(b, &b->slots[i]);
        if (d == NULL || PyList_Append(interps, d) < 0) {
            Py_XDECREF(d);
            pthread_mutex_unlock(&b->mu);
            goto error;
        }
        Py_DECREF(d);
    }
    for (size_t k = 0; k < b->n_records; k++) {
        PyObject *d = subinterp_record_to_tuple(&b->records[k]);
        if (d == NULL || PyList_Append(calls, d) < 0) {
            Py_XDECREF(d);
            pthread_mutex_unlock(&b->mu);
            goto error;
        }
        Py_DECREF(d);
    }
    int generations = b->finished_generation;
    pthread_mutex_unlock(&b->mu);
    if (PyDict_SetItemString(result, "interpreters", interps) < 0 ||
        PyDict_SetItemString(result, "calls", calls) < 0 ||
        subinterp_dict_set(result, "hung", PyBool_FromLong(hung)) < 0 ||
        subinterp_dict_set(result, "generations", PyLong_FromLong(generations)) < 0 ||
        subinterp_dict_set(result, "wall_s", PyFloat_FromDouble(wall)) < 0) {
        goto error;
    }
    Py_DECREF(interps);
    Py_DECREF(calls);
    return result;
error:
    Py_XDECREF(result);
    Py_XDECREF(interps);
    Py_XDECREF(calls);
    return NULL;
}

/* Start one native thread running main(thread_arg{b, index}); the thread frees the argument. */
static int
subinterp_spawn(pthread_t *thread, void *(*main)(void *), battery *b, int index)
{
    thread_arg *arg = malloc(sizeof(thread_arg));
    if (arg == NULL) {
        return -1;
    }
    arg->b = b;
    arg->index = index;
    if (pthread_create(thread, NULL, main, arg) != 0) {
        free(arg);
        return -1;
    }
    return 0;
}

static int
subinterp_start_threads(battery *b)
{
    for (int t = 0; t < b->n_threads; t++) {
        if (subinterp_spawn(&b->worker_threads[t], subinterp_worker_main, b, t) < 0) {
            return -1;
        }
        b->n_workers_started++;
    }
    for (int i = 0; i < b->n_interps; i++) {
        if (subinterp_spawn(&b->creator_threads[i], subinterp_creator_main, b, i) < 0) {
            return -1;
        }
        b->n_creators_started++;
    }
    return 0;
}

/* Wait (without the GIL) until every started thread exited or the deadline passed.
   Returns 1 on timeout. */
static int
subinterp_wait_threads(battery *b, double timeout)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    double whole = (double)(long)timeout;
    deadline.tv_sec += (time_t)whole;
    deadline.tv_nsec += (long)((timeout - whole) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    int timed_out = 0;
    pthread_mutex_lock(&b->mu);
    while (b->creators_exited < b->n_creators_started ||
           b->workers_exited < b->n_workers_started) {
        if (pthread_cond_timedwait(&b->cv, &b->mu, &deadline) == ETIMEDOUT) {
            timed_out = 1;
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return timed_out;
}

static battery *
subinterp_battery_new(int isolated, int k, int t, int r, const char *entry, const char *arg)
{
    const char *colon = strchr(entry, ':');
    if (colon == NULL || colon == entry || colon[1] == '\0') {
        PyErr_Format(PyExc_ValueError,
                     "_subinterp.run_battery: entry must be 'module:function', got '%s'", entry);
        return NULL;
    }
    battery *b = calloc(1, sizeof(battery));
    if (b == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    b->isolated = isolated;
    b->n_interps = k;
    b->n_threads = t;
    b->n_rounds = r;
    b->entry_module = malloc((size_t)(colon - entry) + 1);
    if (b->entry_module != NULL) {
        memcpy(b->entry_module, entry, (size_t)(colon - entry));
        b->entry_module[colon - entry] = '\0';
    }
    b->entry_func = subinterp_strdup(colon + 1);
    b->entry_arg = subinterp_strdup(arg);
    b->slots = calloc((size_t)k, sizeof(interp_slot));
    b->worker_ts = calloc((size_t)t, sizeof(PyThreadState *));
    b->creator_threads = calloc((size_t)k, sizeof(pthread_t));
    b->worker_threads = calloc((size_t)t, sizeof(pthread_t));
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    if (b->entry_module == NULL || b->entry_func == NULL || b->entry_arg == NULL ||
        b->slots == NULL || b->worker_ts == NULL || b->creator_threads == NULL ||
        b->worker_threads == NULL) {
        subinterp_battery_free(b);
        PyErr_NoMemory();
        return NULL;
    }
    for (int i = 0; i < k; i++) {
        b->slots[i].index = i;
        b->slots[i].state = SLOT_CREATING;
        b->slots[i].interp_id = -1;
    }
    return b;
}

/* 1 for "isolated", 0 for "legacy"; -1 with an exception set otherwise (or where isolated
   interpreters do not exist). */
static int
subinterp_parse_config(const char *function, const char *config)
{
    if (strcmp(config, "legacy") == 0) {
        return 0;
    }
    if (strcmp(config, "isolated") != 0) {
        PyErr_Format(PyExc_ValueError,
                     "_subinterp.%s: config must be 'isolated' or 'legacy', got '%s'", function,
                     config);
        return -1;
    }
    if (!SUBINTERP_HAVE_CONFIG) {
        PyErr_Format(PyExc_RuntimeError,
                     "_subinterp.%s: isolated interpreters need Python 3.12+", function);
        return -1;
    }
    return 1;
}

PyDoc_STRVAR(run_battery_doc,
"run_battery(config, interpreters, threads, rounds, entry, arg, timeout) -> dict\n\n"
"Create `interpreters` fresh sub-interpreters ('isolated' or 'legacy'), run\n"
"entry(arg, index) in each from its creator thread, and let `threads` native threads call\n"
"every callable handed to call_point(), thread t in interpreter (t + j) % K for round j.\n"
"With templates=True the interpreters are template interpreters inherited from the zygote\n"
"(see make_templates) instead of new ones.\n"
"Must be called from the main interpreter; one battery per process at a time.");

static PyObject *
subinterp_run_battery(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"config", "interpreters", "threads", "rounds", "entry", "arg",
                             "timeout", "templates", NULL};
    const char *config, *entry, *arg;
    int k, t, r, use_templates = 0;
    double timeout;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "siiissd|p:run_battery", kwlist, &config, &k,
                                     &t, &r, &entry, &arg, &timeout, &use_templates)) {
        return NULL;
    }
    int isolated = subinterp_parse_config("run_battery", config);
    if (isolated < 0) {
        return NULL;
    }
    if (k < 1 || t < 1 || r < 1 || timeout <= 0) {
        /* PyErr_Format has no %g: format the message ourselves. */
        char message[200];
        snprintf(message, sizeof(message),
                 "_subinterp.run_battery: interpreters, threads and rounds must be >= 1 and "
                 "timeout > 0 (got %d, %d, %d, %g)", k, t, r, timeout);
        PyErr_SetString(PyExc_ValueError, message);
        return NULL;
    }
    PyInterpreterState *main_interp = PyInterpreterState_Main();
    if (PyInterpreterState_Get() != main_interp) {
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.run_battery must be called from the main interpreter");
    }
    if (current_battery != NULL) {
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.run_battery: a battery is already running in this process");
    }
    if (use_templates && template_count[isolated] < k) {
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.run_battery: %d %s template interpreter(s) needed, %d "
                            "inherited", k, config, template_count[isolated]);
    }
    battery *b = subinterp_battery_new(isolated, k, t, r, entry, arg);
    if (b == NULL) {
        return NULL;
    }
    if (use_templates) {
        /* Each template serves one battery: this process ends the ones it takes. */
        template_count[isolated] -= k;
        for (int i = 0; i < k; i++) {
            template_t *taken = &template_store[isolated][template_count[isolated] + i];
            b->slots[i].template_interp = taken->interp;
            b->slots[i].template_placeholder = taken->placeholder;
        }
    }
    b->main_interp = main_interp;
    current_battery = b;
    double start = subinterp_now();

    int started_ok, hung;
    Py_BEGIN_ALLOW_THREADS
    started_ok = subinterp_start_threads(b) == 0;
    if (!started_ok) {
        /* Let the threads that did start finish: no interpreter will wait for the missing ones. */
        pthread_mutex_lock(&b->mu);
        for (int i = b->n_creators_started; i < b->n_interps; i++) {
            b->slots[i].state = SLOT_DONE;
            b->slots[i].create_error = subinterp_strdup("pthread_create failed for its creator");
        }
        subinterp_maybe_arm(b);
        pthread_mutex_unlock(&b->mu);
    }
    hung = subinterp_wait_threads(b, timeout);
    if (hung) {
        subinterp_breadcrumb("hang timeout=%g", timeout);
        subinterp_dump_all_stacks(b);
        subinterp_breadcrumb("hang-dump-done");
    }
    else {
        for (int i = 0; i < b->n_creators_started; i++) {
            pthread_join(b->creator_threads[i], NULL);
        }
        for (int i = 0; i < b->n_workers_started; i++) {
            pthread_join(b->worker_threads[i], NULL);
        }
    }
    Py_END_ALLOW_THREADS

    PyObject *result = subinterp_battery_result(b, hung, subinterp_now() - start);
    if (!hung) {
        current_battery = NULL;
        subinterp_battery_free(b);
    }
    /* A hung battery is left allocated: its threads still use it until the process exits. */
    if (result != NULL && !started_ok) {
        Py_DECREF(result);
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.run_battery: could not start the battery's native threads");
    }
    return result;
}

/* ---- template interpreters (in the zygote) ---- */

/* Creator thread of a template: create the interpreter, run the prepare entry (import pytest),
   then detach with the documented sequence, leaving only a placeholder thread state that no
   thread uses: a forked child attaches its own, deletes the placeholder and may then end it. */
static void *
subinterp_template_main(void *raw)
{
    thread_arg *arg = raw;
    battery *b = arg->b;
    interp_slot *slot = &b->slots[arg->index];
    free(arg);
    PyThreadState *main_ts = NULL;
    if (subinterp_create(b, slot, &main_ts) == 0) {
        subinterp_run_entry(b, slot);
        if (slot->entry_error != NULL) {
            subinterp_end(b, slot, main_ts); /* a failed template is not kept */
        }
        else {
            slot->template_placeholder = PyThreadState_New(slot->interp);
            if (slot->template_placeholder == NULL) {
                slot->entry_error = subinterp_strdup("PyThreadState_New(placeholder) failed");
                subinterp_end(b, slot, main_ts);
                goto done;
            }
            PyThreadState_Clear(slot->creator_ts);
            PyThreadState_DeleteCurrent();
            slot->creator_ts = NULL;
            PyEval_RestoreThread(main_ts);
            PyThreadState_Clear(main_ts);
            PyThreadState_DeleteCurrent();
        }
    }
done:
    pthread_mutex_lock(&b->mu);
    slot->state = SLOT_DONE;
    b->creators_exited++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

PyDoc_STRVAR(make_templates_doc,
"make_templates(config, count, entry, arg) -> list[dict]\n\n"
"Create `count` template interpreters ('isolated' or 'legacy', Python 3.12+), run\n"
"entry(arg, index) in each and keep them with no attached thread state, for the children that\n"
"fork_keeping_templates() forks.  Returns one dict per interpreter (as run_battery's\n"
"'interpreters'); the ones whose entry raised were ended and are not kept.  Call it from the\n"
"main interpreter of a process that has no other threads.");

static PyObject *
subinterp_make_templates(PyObject *module, PyObject *args)
{
    const char *config, *entry, *arg;
    int count;
    if (!PyArg_ParseTuple(args, "siss:make_templates", &config, &count, &entry, &arg)) {
        return NULL;
    }
    int isolated = subinterp_parse_config("make_templates", config);
    if (isolated < 0) {
        return NULL;
    }
    if (!SUBINTERP_HAVE_CONFIG) {
        /* Before 3.12 Py_EndInterpreter needs the main thread state our attach never makes. */
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.make_templates: template interpreters need Python 3.12+");
    }
    if (count < 1 || template_count[isolated] + count > SUBINTERP_MAX_TEMPLATES) {
        return PyErr_Format(PyExc_ValueError,
                            "_subinterp.make_templates: count must be 1..%d in all (have %d, asked %d)",
                            SUBINTERP_MAX_TEMPLATES, template_count[isolated], count);
    }
    if (PyInterpreterState_Get() != PyInterpreterState_Main() || current_battery != NULL) {
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.make_templates must be called from the main interpreter "
                            "outside a battery");
    }
    battery *b = subinterp_battery_new(isolated, count, 1, 1, entry, arg);
    if (b == NULL) {
        return NULL;
    }
    b->main_interp = PyInterpreterState_Main();
    int started_ok = 1;
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < count; i++) {
        if (subinterp_spawn(&b->creator_threads[i], subinterp_template_main, b, i) < 0) {
            b->slots[i].create_error = subinterp_strdup("pthread_create failed for its creator");
            started_ok = 0;
            break;
        }
        b->n_creators_started++;
    }
    for (int i = 0; i < b->n_creators_started; i++) {
        pthread_join(b->creator_threads[i], NULL);
    }
    Py_END_ALLOW_THREADS
    PyObject *result = PyList_New(0);
    for (int i = 0; result != NULL && i < count; i++) {
        interp_slot *slot = &b->slots[i];
        if (slot->interp != NULL && slot->template_placeholder != NULL) {
            template_t *kept = &template_store[isolated][template_count[isolated]++];
            kept->interp = slot->interp;
            kept->placeholder = slot->template_placeholder;
        }
        PyObject *d = subinterp_slot_to_dict(b, slot);
        if (d == NULL || PyList_Append(result, d) < 0) {
            Py_CLEAR(result);
        }
        Py_XDECREF(d);
    }
    subinterp_battery_free(b);
    if (result != NULL && !started_ok) {
        Py_DECREF(result);
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.make_templates: could not start its native threads");
    }
    return result;
}

static PyObject *
subinterp_template_count(PyObject *module, PyObject *args)
{
    const char *config;
    if (!PyArg_ParseTuple(args, "s:template_count", &config)) {
        return NULL;
    }
    int isolated = subinterp_parse_config("template_count", config);
    if (isolated < 0) {
        return NULL;
    }
    return PyLong_FromLong(template_count[isolated]);
}

PyDoc_STRVAR(fork_keeping_templates_doc,
"fork_keeping_templates() -> int\n\n"
"fork() without PyOS_AfterFork_Child, which would delete every sub-interpreter: the child\n"
"inherits the template interpreters.  Only for a single-threaded process (the zygote), whose\n"
"locks are then all free; returns 0 in the child and the child's pid in the parent.");

static PyObject *
subinterp_fork_keeping_templates(PyObject *module, PyObject *unused)
{
    if (PyInterpreterState_Get() != PyInterpreterState_Main() || current_battery != NULL) {
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.fork_keeping_templates must be called from the main "
                            "interpreter outside a battery");
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong((long)pid);
}

#ifdef __linux__
#include <sys/mman.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#endif

/* Copy every private writable page of this process now, in one madvise per mapping.  A child
   forked from a zygote that holds template interpreters otherwise takes one copy-on-write fault
   per page while it ends them (measured here: 8,200 faults, ~120 ms for two isolated
   templates, against ~30 ms for the whole process at once). */
static PyObject *
subinterp_populate_memory(PyObject *module, PyObject *unused)
{
#if defined(__linux__)
    FILE *maps = fopen("/proc/self/maps", "r");
    if (maps == NULL) {
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, "/proc/self/maps");
    }
    /* Read every range first: madvise must not run while the listing is being read. */
    size_t n = 0, cap = 0;
    uintptr_t (*ranges)[2] = NULL;
    char line[4096];
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long start, end;
        char perms[5] = {0};
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &start, &end, perms, &path_at) < 3) {
            continue;
        }
        const char *path = path_at > 0 ? line + path_at : "";
        if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p' ||
            strncmp(path, "[stack", 6) == 0 || strncmp(path, "[v", 2) == 0) {
            continue;
        }
        if (n == cap) {
            size_t grown_cap = cap ? cap * 2 : 128;
            void *grown = realloc(ranges, grown_cap * sizeof(*ranges));
            if (grown == NULL) {
                break;
            }
            ranges = grown;
            cap = grown_cap;
        }
        ranges[n][0] = start;
        ranges[n][1] = end;
        n++;
    }
    fclose(maps);
    size_t bytes = 0;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < n; i++) {
        /* Failures (an old kernel: EINVAL) only cost the faults this would have saved. */
        if (madvise((void *)ranges[i][0], ranges[i][1] - ranges[i][0], MADV_POPULATE_WRITE) == 0) {
            bytes += ranges[i][1] - ranges[i][0];
        }
    }
    Py_END_ALLOW_THREADS
    free(ranges);
    return PyLong_FromSize_t(bytes);
#else
    return PyLong_FromLong(0);
#endif
}

extern char **environ;

/* The process environment as it is now.  A template interpreter's os.environ is a snapshot of
   the zygote's, taken when the template imported os; a battery child may have changed it since. */
static PyObject *
subinterp_process_environ(PyObject *module, PyObject *unused)
{
    PyObject *result = PyDict_New();
    if (result == NULL) {
        return NULL;
    }
    for (char **entry = environ; entry != NULL && *entry != NULL; entry++) {
        const char *eq = strchr(*entry, '=');
        if (eq == NULL || eq == *entry) {
            continue;
        }
        PyObject *key = PyBytes_FromStringAndSize(*entry, eq - *entry);
        PyObject *value = key ? PyBytes_FromString(eq + 1) : NULL;
        int rc = value ? PyDict_SetItem(result, key, value) : -1;
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (rc < 0) {
            Py_DECREF(result);
            return NULL;
        }
    }
    return result;
}

/* ---- call point (called inside a sub-interpreter) ---- */

static interp_slot *
subinterp_current_slot(battery *b)
{
    if (b == NULL) {
        return NULL;
    }
    PyInterpreterState *interp = PyInterpreterState_Get();
    for (int i = 0; i < b->n_interps; i++) {
        if (b->slots[i].interp == interp) {
            return &b->slots[i];
        }
    }
    return NULL;
}

PyDoc_STRVAR(call_point_doc,
"call_point(fn) -> list[dict]\n\n"
"Arrive at the next rendezvous of the running battery from this interpreter's creator thread.\n"
"fn(thread, round) is called by the battery threads visiting this interpreter (None: this\n"
"interpreter has nothing to run for this test).  Blocks, with the GIL released, until every\n"
"battery thread finished the rendezvous; returns the records of the calls made here.");

static PyObject *
subinterp_call_point(PyObject *module, PyObject *fn)
{
    battery *b = current_battery;
    interp_slot *slot = subinterp_current_slot(b);
    if (slot == NULL) {
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.call_point: this interpreter is not part of a running battery");
    }
    if (PyThreadState_Get() != slot->creator_ts) {
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.call_point must be called from the creator thread of "
                            "interpreter %d", slot->index);
    }
    if (fn != Py_None && !PyCallable_Check(fn)) {
        return PyErr_Format(PyExc_TypeError, "_subinterp.call_point: fn must be callable or None");
    }
    int index = slot->index;
    int generation;
    PyObject *held = fn == Py_None ? NULL : Py_NewRef(fn);
    subinterp_set_where(index, -1, -1, "call-wait");

    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&b->mu);
    generation = slot->arrived_generation + 1;
    slot->fn = held;
    slot->arrived_generation = generation;
    subinterp_maybe_arm(b);
    while (b->finished_generation < generation) {
        pthread_cond_wait(&b->cv, &b->mu);
    }
    slot->fn = NULL;
    pthread_mutex_unlock(&b->mu);
    Py_END_ALLOW_THREADS

    Py_XDECREF(held);
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&b->mu);
    for (size_t k = 0; k < b->n_records; k++) {
        call_record *r = &b->records[k];
        if (r->generation != generation || r->interp != index) {
            continue;
        }
        PyObject *d = subinterp_record_to_tuple(r);
        if (d == NULL || PyList_Append(out, d) < 0) {
            Py_XDECREF(d);
            Py_DECREF(out);
            pthread_mutex_unlock(&b->mu);
            return NULL;
        }
        Py_DECREF(d);
    }
    pthread_mutex_unlock(&b->mu);
    return out;
}

/* ---- barrier (called inside a sub-interpreter) ---- */

/* True when every interpreter still running has arrived at barrier `generation`.
   Caller holds b->mu. */
static int
subinterp_barrier_reached(battery *b, int generation)
{
    for (int i = 0; i < b->n_interps; i++) {
        interp_slot *s = &b->slots[i];
        if (s->state != SLOT_DONE && s->barrier_generation < generation) {
            return 0;
        }
    }
    return 1;
}

PyDoc_STRVAR(barrier_doc,
"barrier() -> None\n\n"
"Wait, with the GIL released, until every interpreter of the battery that is still running\n"
"has called barrier() as often as this one (used to compare objects of interpreters that are\n"
"all alive).  Interpreters whose entry function returned no longer count.");

static PyObject *
subinterp_barrier(PyObject *module, PyObject *unused)
{
    battery *b = current_battery;
    interp_slot *slot = subinterp_current_slot(b);
    if (slot == NULL) {
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.barrier: this interpreter is not part of a running battery");
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&b->mu);
    int generation = ++slot->barrier_generation;
    pthread_cond_broadcast(&b->cv);
    while (!subinterp_barrier_reached(b, generation)) {
        pthread_cond_wait(&b->cv, &b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* ---- small helpers used by the inner plugin ---- */

static PyObject *
subinterp_set_phase(PyObject *module, PyObject *args)
{
    const char *phase;
    if (!PyArg_ParseTuple(args, "s:set_phase", &phase)) {
        return NULL;
    }
    /* The crash handler reads here.phase: keep a pointer to a static string. */
    static const char *const known[] = {"collect", "setup", "call", "teardown", "import",
                                        "finish", "call-wait", "idle"};
    const char *stable = "python";
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        if (strcmp(known[k], phase) == 0) {
            stable = known[k];
        }
    }
    interp_slot *slot = subinterp_current_slot(current_battery);
    subinterp_set_where(slot ? slot->index : -1, here.thread, here.round, stable);
    Py_RETURN_NONE;
}

static PyObject *
subinterp_interpreter_index(PyObject *module, PyObject *unused)
{
    interp_slot *slot = subinterp_current_slot(current_battery);
    return PyLong_FromLong(slot ? slot->index : -1);
}

static PyObject *
subinterp_breadcrumb_py(PyObject *module, PyObject *args)
{
    const char *text;
    if (!PyArg_ParseTuple(args, "s:breadcrumb", &text)) {
        return NULL;
    }
    subinterp_breadcrumb("%s", text);
    Py_RETURN_NONE;
}

static PyObject *
subinterp_is_single_phase(PyObject *module, PyObject *candidate)
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
static PyObject *
subinterp_module_slots(PyObject *module, PyObject *candidate)
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
#if PY_VERSION_HEX >= 0x030C0000
        /* Py_mod_multiple_interpreters exists from 3.12 (PEP 684) */
        if (slot->slot == Py_mod_multiple_interpreters) {
            target = &multiple;
        }
#endif
#if PY_VERSION_HEX >= 0x030D0000
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

/* ---- module definition ---- */

static PyMethodDef subinterp_methods[] = {
    {"run_battery", (PyCFunction)(void (*)(void))subinterp_run_battery,
     METH_VARARGS | METH_KEYWORDS, run_battery_doc},
    {"make_templates", subinterp_make_templates, METH_VARARGS, make_templates_doc},
    {"template_count", subinterp_template_count, METH_VARARGS,
     "template_count(config) -> int: template interpreters of that config this process holds."},
    {"fork_keeping_templates", subinterp_fork_keeping_templates, METH_NOARGS,
     fork_keeping_templates_doc},
    {"populate_memory", subinterp_populate_memory, METH_NOARGS,
     "populate_memory() -> int: copy every private writable page now (Linux; else 0); returns\n"
     "the bytes populated."},
    {"process_environ", subinterp_process_environ, METH_NOARGS,
     "process_environ() -> dict[bytes, bytes]: the process environment as it is now."},
    {"call_point", subinterp_call_point, METH_O, call_point_doc},
    {"barrier", subinterp_barrier, METH_NOARGS, barrier_doc},
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
    {NULL, NULL, 0, NULL},
};

static int
subinterp_exec(PyObject *module)
{
    if (PyModule_AddIntConstant(module, "CALL_PASSED", CALL_PASSED) < 0 ||
        PyModule_AddIntConstant(module, "CALL_FAILED", CALL_FAILED) < 0 ||
        PyModule_AddIntConstant(module, "CALL_NOT_RUN", CALL_NOT_RUN) < 0 ||
        PyModule_AddIntConstant(module, "CALL_ERROR", CALL_ERROR) < 0 ||
        PyModule_AddIntConstant(module, "HAVE_ISOLATED", SUBINTERP_HAVE_CONFIG) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot subinterp_slots[] = {
    {Py_mod_exec, subinterp_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* The helper itself must load in the isolated interpreters it creates. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
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
