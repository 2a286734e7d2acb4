/* results.c: how results cross interpreters.  Python objects never do: text is copied out of an
   interpreter as malloc'd C strings (an exception as its formatted traceback), each call of the
   test body is a C call_record, and the main interpreter (or the creator, for its own records)
   turns them into Python dicts. */

#include "subinterp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- clock ---- */

double
subinterp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- text out of an interpreter ---- */

char *
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

char *
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
char *
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

/* ---- call records ---- */

void
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

/* ---- results as Python objects ---- */

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

PyObject *
subinterp_slot_to_dict(battery *Py_UNUSED(b), interp_slot *s)
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

PyObject *
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

PyObject *
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

