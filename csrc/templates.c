/* templates.c: template interpreters, made once in the zygote (pytest already imported) and
   inherited by each battery child that fork_keeping_templates() forks; and what such a child
   needs to use them well: its memory copied at once (populate_memory) and the process
   environment as it is now (process_environ). */

#include "subinterp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
            subinterp_detach(slot->creator_ts);
            slot->creator_ts = NULL;
            PyEval_RestoreThread(main_ts);
            subinterp_detach(main_ts);
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

SUBINTERP_DOC(subinterp_make_templates_doc,
"make_templates(config, count, entry, arg) -> list[dict]\n\n"
"Create `count` template interpreters ('isolated' or 'legacy', Python 3.12+), run\n"
"entry(arg, index) in each and keep them with no attached thread state, for the children that\n"
"fork_keeping_templates() forks.  Returns one dict per interpreter (as run_battery's\n"
"'interpreters'); the ones whose entry raised were ended and are not kept.  Call it from the\n"
"main interpreter of a process that has no other threads.");

PyObject *
subinterp_make_templates(PyObject *Py_UNUSED(module), PyObject *args)
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
    if (count < 1 || subinterp_templates_held[isolated] + count > SUBINTERP_MAX_TEMPLATES) {
        return PyErr_Format(PyExc_ValueError,
                            "_subinterp.make_templates: count must be 1..%d in all (have %d, asked %d)",
                            SUBINTERP_MAX_TEMPLATES, subinterp_templates_held[isolated], count);
    }
    if (PyInterpreterState_Get() != PyInterpreterState_Main() || subinterp_current_battery != NULL) {
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
            template_t *kept = &subinterp_templates[isolated][subinterp_templates_held[isolated]++];
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

PyObject *
subinterp_template_count(PyObject *Py_UNUSED(module), PyObject *args)
{
    const char *config;
    if (!PyArg_ParseTuple(args, "s:template_count", &config)) {
        return NULL;
    }
    int isolated = subinterp_parse_config("template_count", config);
    if (isolated < 0) {
        return NULL;
    }
    return PyLong_FromLong(subinterp_templates_held[isolated]);
}

SUBINTERP_DOC(subinterp_fork_keeping_templates_doc,
"fork_keeping_templates() -> int\n\n"
"fork() without PyOS_AfterFork_Child, which would delete every sub-interpreter: the child\n"
"inherits the template interpreters.  Only for a single-threaded process (the zygote), whose\n"
"locks are then all free; returns 0 in the child and the child's pid in the parent.");

/* ---- fork keeping the templates ---- */

PyObject *
subinterp_fork_keeping_templates(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(unused))
{
    if (PyInterpreterState_Get() != PyInterpreterState_Main() || subinterp_current_battery != NULL) {
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

/* ---- memory and environment of a forked child ---- */

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
PyObject *
subinterp_populate_memory(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(unused))
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
PyObject *
subinterp_process_environ(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(unused))
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
