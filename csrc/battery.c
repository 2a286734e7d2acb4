/* battery.c: the battery engine.  K creator threads each create (or attach to) one interpreter
   and run the entry there; T foreign threads visit the interpreters at each rendezvous that the
   creators arrive at through call_point(), thread t in interpreter (t + j) % K for round j;
   barrier() lines up the interpreters still running.  run_battery() starts and waits for all
   of it from the main interpreter.  See subinterp.h for the order of steps. */

#include "subinterp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


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

/* ---- foreign threads ---- */

/* One call of the test body, as the scoped activation in subinterp_call_in runs it. */
typedef struct {
    battery *b;
    PyObject *fn;
    int t, j;
    call_record *rec;
} call_arg;

static void
subinterp_call_attached(PyThreadState *ts, void *raw)
{
    call_arg *arg = raw;
    call_record *rec = arg->rec;
    arg->b->worker_ts[arg->t] = ts;
    PyObject *result = PyObject_CallFunction(arg->fn, "ii", arg->t, arg->j);
    if (result == NULL) {
        rec->status = CALL_ERROR;
        rec->text = subinterp_fetch_exception_text();
    }
    else if (result != Py_None) {
        rec->status = CALL_FAILED;
        const char *utf8 = PyUnicode_Check(result) ? PyUnicode_AsUTF8(result) : NULL;
        rec->text = subinterp_strdup(utf8 ? utf8 : "(test body failed)");
        PyErr_Clear();
    }
    Py_XDECREF(result);
    arg->b->worker_ts[arg->t] = NULL;
}

/* Run fn(thread, round) once in slot's interpreter on this foreign thread: attach, call,
   detach (threadstate.c). */
static call_record
subinterp_call_in(battery *b, interp_slot *slot, PyObject *fn, int t, int j, int generation)
{
    call_record rec = {generation, t, j, slot->index, CALL_PASSED, NULL, 0.0};
    subinterp_set_where(slot->index, t, j, "call");
    double start = subinterp_now();
    call_arg arg = {b, fn, t, j, &rec};
    /* NULL: a battery thread has no thread state between calls. */
    if (subinterp_run_attached(NULL, slot->interp, subinterp_call_attached, &arg) < 0) {
        rec.status = CALL_ERROR;
        rec.text = subinterp_strdupf("PyThreadState_New failed for interpreter %d", slot->index);
        return rec;
    }
    rec.seconds = subinterp_now() - start;
    subinterp_breadcrumb("done call interp=%d thread=%d round=%d status=%d", slot->index, t, j,
                         rec.status);
    subinterp_here.phase = "idle";
    return rec;
}

static void *
subinterp_worker_main(void *raw)
{
    thread_arg *arg = raw;
    battery *b = arg->b;
    int t = arg->index;
    free(arg);
    subinterp_here.thread = t;
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

/* ---- creator threads ---- */

/* This interpreter takes part in no further rendezvous or barrier. */
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

/* Creator thread of one interpreter: create it (or attach to its template), run the entry
   (the inner pytest, which arrives at the rendezvous through call_point), end it. */
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

/* ---- battery (main interpreter entry point) ---- */

void
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

/* Start one native thread running main(thread_arg{b, index}); the thread frees the argument. */
int
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

battery *
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
int
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

SUBINTERP_DOC(subinterp_run_battery_doc,
"run_battery(config, interpreters, threads, rounds, entry, arg, timeout) -> dict\n\n"
"Create `interpreters` fresh sub-interpreters ('isolated' or 'legacy'), run\n"
"entry(arg, index) in each from its creator thread, and let `threads` native threads call\n"
"every callable handed to call_point(), thread t in interpreter (t + j) % K for round j.\n"
"With templates=True the interpreters are template interpreters inherited from the zygote\n"
"(see make_templates) instead of new ones.\n"
"Must be called from the main interpreter; one battery per process at a time.");

PyObject *
subinterp_run_battery(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
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
    if (subinterp_current_battery != NULL) {
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.run_battery: a battery is already running in this process");
    }
    if (use_templates && subinterp_templates_held[isolated] < k) {
        return PyErr_Format(PyExc_RuntimeError,
                            "_subinterp.run_battery: %d %s template interpreter(s) needed, %d "
                            "inherited", k, config, subinterp_templates_held[isolated]);
    }
    battery *b = subinterp_battery_new(isolated, k, t, r, entry, arg);
    if (b == NULL) {
        return NULL;
    }
    if (use_templates) {
        /* Each template serves one battery: this process ends the ones it takes. */
        subinterp_templates_held[isolated] -= k;
        for (int i = 0; i < k; i++) {
            template_t *taken = &subinterp_templates[isolated][subinterp_templates_held[isolated] + i];
            b->slots[i].template_interp = taken->interp;
            b->slots[i].template_placeholder = taken->placeholder;
        }
    }
    b->main_interp = main_interp;
    subinterp_current_battery = b;
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
        int stuck = subinterp_dump_all_stacks(b);
        if (stuck) {
            subinterp_dump_stacks_without_gil(b);
        }
        subinterp_breadcrumb("hang-dump-done");
        if (stuck && !b->isolated) {
            /* The GIL a battery thread holds forever is the main interpreter's too (legacy
               interpreters share it): Py_END_ALLOW_THREADS would wait for it forever, so the
               hang is reported by this exit code and the breadcrumbs instead of a result. */
            subinterp_breadcrumb("hang-gil-held");
            _exit(SUBINTERP_EXIT_HUNG_GIL_HELD);
        }
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
        subinterp_current_battery = NULL;
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

/* ---- call point (called inside a sub-interpreter) ---- */

interp_slot *
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

SUBINTERP_DOC(subinterp_call_point_doc,
"call_point(fn) -> list[dict]\n\n"
"Arrive at the next rendezvous of the running battery from this interpreter's creator thread.\n"
"fn(thread, round) is called by the battery threads visiting this interpreter (None: this\n"
"interpreter has nothing to run for this test).  Blocks, with the GIL released, until every\n"
"battery thread finished the rendezvous; returns the records of the calls made subinterp_here.");

PyObject *
subinterp_call_point(PyObject *Py_UNUSED(module), PyObject *fn)
{
    battery *b = subinterp_current_battery;
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

SUBINTERP_DOC(subinterp_barrier_doc,
"barrier() -> None\n\n"
"Wait, with the GIL released, until every interpreter of the battery that is still running\n"
"has called barrier() as often as this one (used to compare objects of interpreters that are\n"
"all alive).  Interpreters whose entry function returned no longer count.");

PyObject *
subinterp_barrier(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(unused))
{
    battery *b = subinterp_current_battery;
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
