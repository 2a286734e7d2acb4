/* subinterp.h: internal header of the _subinterp C helper (not installed, not a public API).

   Python equivalent and signatures: pytest_subinterp/_subinterp.pyi.
   Order: create -> run entry (inner pytest) -> rendezvous -> attach -> call -> detach -> end.

   One battery runs per process at a time (the process is a disposable child of the plugin's
   zygote), so the battery is process-global C state shared by every interpreter; Python
   objects never cross interpreters: results cross as C strings.

   Thread-state sequences follow the C-API documentation (see shared/seed), and are written once,
   in threadstate.c:
     foreign thread:  ts = PyThreadState_New(interp); PyEval_RestoreThread(ts); ... work ...;
                      PyThreadState_Clear(ts); PyThreadState_DeleteCurrent();
     creator thread:  attach to the main interpreter, Py_NewInterpreter[FromConfig], run, then
                      Py_EndInterpreter(ts) with the creator's own thread state current.

   Files, by job:
     threadstate.c  the attach/detach pair and the scoped activation built on it
     interp.c       one interpreter's life: create (or attach to a template), run entry, end
     battery.c      the battery engine: creator and foreign threads, rendezvous, call point,
                    barrier, run_battery
     results.c      text out of an interpreter, call records, results as Python objects
     diagnostics.c  breadcrumbs, hang dump, crash handler
     templates.c    template interpreters in the zygote, fork keeping them, memory, environ
     introspect.c   small helpers for the inner plugin and `pytest-subinterp check`
     module.c       process state, method table, module definition (PyInit__subinterp)

   Only PyInit__subinterp is exported: every other cross-file name is SUBINTERP_INTERNAL. */

#ifndef SUBINTERP_H
#define SUBINTERP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define SUBINTERP_INTERNAL __attribute__((visibility("hidden")))
#else
#define SUBINTERP_INTERNAL
#endif

/* A docstring that the method table in module.c refers to, kept next to its function. */
#define SUBINTERP_DOC(name, text) SUBINTERP_INTERNAL const char name[] = PyDoc_STR(text)

/* ---- version gates ---- */

#if PY_VERSION_HEX >= 0x030C0000
/* Py_NewInterpreterFromConfig and own-GIL interpreters (PEP 684) exist from 3.12; without this
   gate 3.10/3.11 fail to compile (PyInterpreterConfig is undeclared), and they can only make
   legacy interpreters with Py_NewInterpreter(). */
#define SUBINTERP_HAVE_CONFIG 1
#else
#define SUBINTERP_HAVE_CONFIG 0
#endif

#if PY_VERSION_HEX >= 0x030C0000
/* The Py_mod_multiple_interpreters slot (PEP 684) exists from 3.12.  Without this gate 3.10/3.11
   fail to compile; and without the slot on 3.12+ the helper itself would be refused by the
   isolated interpreters it creates. */
#define SUBINTERP_HAVE_MOD_MULTIPLE_INTERPRETERS 1
#else
#define SUBINTERP_HAVE_MOD_MULTIPLE_INTERPRETERS 0
#endif

#if PY_VERSION_HEX >= 0x030D0000
/* The Py_mod_gil slot (PEP 703) exists from 3.13; earlier versions fail to compile without this
   gate. */
#define SUBINTERP_HAVE_MOD_GIL 1
#else
#define SUBINTERP_HAVE_MOD_GIL 0
#endif

#if PY_VERSION_HEX < 0x030C0000
/* Before 3.12 Py_EndInterpreter returns still holding the single shared GIL; from 3.12 it returns
   with no GIL held.  Getting this wrong deadlocks (acquiring a GIL already held) or runs without
   the GIL when returning to the main thread state. */
#define SUBINTERP_END_RETURNS_WITH_GIL 1
#else
#define SUBINTERP_END_RETURNS_WITH_GIL 0
#endif

#if PY_VERSION_HEX < 0x030D0000
/* Before 3.13, creating interpreters concurrently from several threads can crash (pybind11
   serializes creation with a mutex there, include/pybind11/subinterpreter.h): isolated
   interpreters are then created one at a time too. */
#define SUBINTERP_SERIALIZE_CREATION 1
#else
#define SUBINTERP_SERIALIZE_CREATION 0
#endif

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
/* _Py_DumpTraceback is exported (PyAPI_FUNC) by 3.11 and 3.12 but declared only in their internal
   headers, so it is declared here.  3.10 declares it but does not export it (nm -D libpython3.10:
   the helper then fails to load with "undefined symbol: _Py_DumpTraceback") and 3.13 stopped
   exporting it: there the crash handler walks the frames itself (3.10, see below) or falls back
   to the breadcrumb and the native stack (3.13). */
PyAPI_FUNC(void) _Py_DumpTraceback(int fd, PyThreadState *tstate);
#define SUBINTERP_CAN_DUMP_CRASHING_THREAD 1
#else
#define SUBINTERP_CAN_DUMP_CRASHING_THREAD 0
#endif

#if PY_VERSION_HEX < 0x030B0000
/* 3.10 only: PyFrameObject (cpython/frameobject.h) still has f_code and f_back, and
   PyThreadState.frame is the top frame, so the crash handler can write the crashing thread's
   Python stack without _Py_DumpTraceback.  From 3.11 frames live in the private
   _PyInterpreterFrame and this walk does not compile. */
#define SUBINTERP_WALK_CRASHING_FRAMES 1
#else
#define SUBINTERP_WALK_CRASHING_FRAMES 0
#endif

#if PY_VERSION_HEX >= 0x030D0000
/* For the crash handler: the thread state that is current, or NULL, without a fatal error when
   there is none.  3.13 made it public as PyThreadState_GetUnchecked and no longer declares
   _PyThreadState_UncheckedGet, which 3.10-3.12 export (cpython/pystate.h).  On 3.10 and 3.11 it
   is the process's GIL holder, not necessarily this OS thread's (thread-local from 3.12): a
   thread that crashed running Python holds the GIL, so it is the crashing thread's there too. */
#define subinterp_current_ts_or_null() PyThreadState_GetUnchecked()
#else
#define subinterp_current_ts_or_null() _PyThreadState_UncheckedGet()
#endif

/* ---- types ---- */

/* Exit code of a battery child whose hang could not be reported from Python: a battery thread
   holds the GIL the main interpreter shares (legacy), so the main thread can never run Python
   again (child.py EXIT_HUNG_GIL_HELD). */
#define SUBINTERP_EXIT_HUNG_GIL_HELD 71

enum { CALL_PASSED = 0, CALL_FAILED = 1, CALL_NOT_RUN = 2, CALL_ERROR = 3 };

/* What one battery thread's call of the test body in one interpreter gave. */
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

/* What a battery thread (worker, creator or template creator) is started with. */
typedef struct {
    battery *b;
    int index;
} thread_arg;

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

/* Per-OS-thread breadcrumb read by the crash handler: where this thread is right now. */
typedef struct {
    int interp, thread, round;
    const char *phase;
} where_t;

/* ---- process state (module.c) ---- */

/* Process-global, not per-module state (the module has m_size 0): the battery started from the
   main interpreter is read by call_point()/barrier() in each sub-interpreter, every one of which
   has its own module object, and by the crash handler, which has no module at all. */
SUBINTERP_INTERNAL extern battery *subinterp_current_battery;
SUBINTERP_INTERNAL extern int subinterp_progress_fd; /* breadcrumbs go here; -1: nowhere */
SUBINTERP_INTERNAL extern template_t subinterp_templates[2][SUBINTERP_MAX_TEMPLATES];
SUBINTERP_INTERNAL extern int subinterp_templates_held[2];
SUBINTERP_INTERNAL extern __thread where_t subinterp_here;

/* ---- threadstate.c ---- */

SUBINTERP_INTERNAL PyThreadState *subinterp_attach(PyInterpreterState *interp);
SUBINTERP_INTERNAL void subinterp_detach(PyThreadState *ts);
typedef void (*subinterp_attached_fn)(PyThreadState *ts, void *arg);
SUBINTERP_INTERNAL int subinterp_run_attached(PyThreadState *previous, PyInterpreterState *interp,
                                              subinterp_attached_fn body, void *arg);

/* ---- interp.c ---- */

SUBINTERP_INTERNAL int subinterp_create(battery *b, interp_slot *slot, PyThreadState **main_ts);
SUBINTERP_INTERNAL int subinterp_attach_template(battery *b, interp_slot *slot);
SUBINTERP_INTERNAL void subinterp_run_entry(battery *b, interp_slot *slot);
SUBINTERP_INTERNAL void subinterp_end(battery *b, interp_slot *slot, PyThreadState *main_ts);

/* ---- battery.c ---- */

SUBINTERP_INTERNAL battery *subinterp_battery_new(int isolated, int k, int t, int r,
                                                  const char *entry, const char *arg);
SUBINTERP_INTERNAL void subinterp_battery_free(battery *b);
SUBINTERP_INTERNAL int subinterp_spawn(pthread_t *thread, void *(*main)(void *), battery *b,
                                       int index);
SUBINTERP_INTERNAL int subinterp_parse_config(const char *function, const char *config);
SUBINTERP_INTERNAL interp_slot *subinterp_current_slot(battery *b);
SUBINTERP_INTERNAL PyObject *subinterp_run_battery(PyObject *module, PyObject *args,
                                                   PyObject *kwargs);
SUBINTERP_INTERNAL PyObject *subinterp_call_point(PyObject *module, PyObject *fn);
SUBINTERP_INTERNAL PyObject *subinterp_barrier(PyObject *module, PyObject *unused);
SUBINTERP_INTERNAL extern const char subinterp_run_battery_doc[];
SUBINTERP_INTERNAL extern const char subinterp_call_point_doc[];
SUBINTERP_INTERNAL extern const char subinterp_barrier_doc[];

/* ---- results.c ---- */

SUBINTERP_INTERNAL double subinterp_now(void);
SUBINTERP_INTERNAL char *subinterp_strdup(const char *s);
SUBINTERP_INTERNAL char *subinterp_strdupf(const char *fmt, ...);
SUBINTERP_INTERNAL char *subinterp_fetch_exception_text(void);
SUBINTERP_INTERNAL void subinterp_add_record(battery *b, call_record rec);
SUBINTERP_INTERNAL PyObject *subinterp_slot_to_dict(battery *b, interp_slot *s);
SUBINTERP_INTERNAL PyObject *subinterp_record_to_tuple(call_record *r);
SUBINTERP_INTERNAL PyObject *subinterp_battery_result(battery *b, int hung, double wall);

/* ---- diagnostics.c ---- */

SUBINTERP_INTERNAL void subinterp_breadcrumb(const char *fmt, ...);
SUBINTERP_INTERNAL void subinterp_set_where(int interp, int thread, int round, const char *phase);
SUBINTERP_INTERNAL int subinterp_dump_all_stacks(battery *b);
SUBINTERP_INTERNAL void subinterp_dump_stacks_without_gil(battery *b);
SUBINTERP_INTERNAL PyObject *subinterp_set_parent_death_signal(PyObject *module, PyObject *args);
SUBINTERP_INTERNAL extern const char subinterp_set_parent_death_signal_doc[];
SUBINTERP_INTERNAL PyObject *subinterp_install_crash_handler(PyObject *module, PyObject *args);

/* ---- templates.c ---- */

SUBINTERP_INTERNAL PyObject *subinterp_make_templates(PyObject *module, PyObject *args);
SUBINTERP_INTERNAL PyObject *subinterp_template_count(PyObject *module, PyObject *args);
SUBINTERP_INTERNAL PyObject *subinterp_fork_keeping_templates(PyObject *module, PyObject *unused);
SUBINTERP_INTERNAL PyObject *subinterp_populate_memory(PyObject *module, PyObject *unused);
SUBINTERP_INTERNAL PyObject *subinterp_process_environ(PyObject *module, PyObject *unused);
SUBINTERP_INTERNAL extern const char subinterp_make_templates_doc[];
SUBINTERP_INTERNAL extern const char subinterp_fork_keeping_templates_doc[];

/* ---- introspect.c ---- */

SUBINTERP_INTERNAL PyObject *subinterp_set_phase(PyObject *module, PyObject *args);
SUBINTERP_INTERNAL PyObject *subinterp_interpreter_index(PyObject *module, PyObject *unused);
SUBINTERP_INTERNAL PyObject *subinterp_breadcrumb_py(PyObject *module, PyObject *args);
SUBINTERP_INTERNAL PyObject *subinterp_is_single_phase(PyObject *module, PyObject *candidate);
SUBINTERP_INTERNAL PyObject *subinterp_module_slots(PyObject *module, PyObject *candidate);

#endif /* SUBINTERP_H */
