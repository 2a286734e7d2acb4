/* crash_on_end_ext: multi-phase, claims per-interpreter GIL support, and crashes when the second
   interpreter that imported it ends.

   Planted defect: process-wide state released per module object.  The first Py_mod_exec in the
   process allocates a C static (`shared_cache`, raw memory so that any interpreter may free it);
   m_free, written as if it ran once per process, reads the cache, frees it and NULLs the pointer.
   The first module object to be freed (the end of the first importing interpreter, or of the main
   interpreter at exit) is fine; the next m_free dereferences the NULL pointer: a deterministic
   SIGSEGV when the second interpreter that imported the module ends, whether the two were alive
   at the same time or one after the other.  With only the main interpreter m_free runs once at
   exit, so plain tests pass.

   Python API:
     add(a, b) -> a + b

   The same file is built as subinterp_demo._crash_on_end by examples/demo_ext (EXT_NAME/
   EXT_QUALNAME are defined there); tests/test_extmods.py checks that the copies stay identical. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef EXT_NAME
#  define EXT_NAME crash_on_end_ext
#endif
#define EXT_STR_(x) #x
#define EXT_STR(x) EXT_STR_(x)
#ifndef EXT_QUALNAME
#  define EXT_QUALNAME EXT_STR(EXT_NAME)
#endif
#define EXT_INIT_(name) PyInit_##name
#define EXT_INIT(name) EXT_INIT_(name)

/* ---- process-wide state (the defect) ---- */

typedef struct {
    size_t size;
    char *buffer;
} cache_t;

static cache_t *shared_cache = NULL; /* DEFECT: one per process, freed per module object */
static int cache_created = 0;        /* created by the first exec only */

/* ---- module functions ---- */

static PyObject *
crash_on_end_add(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return PyNumber_Add(args[0], args[1]);
}

static PyMethodDef crash_on_end_methods[] = {
    {"add", (PyCFunction)(void (*)(void))crash_on_end_add, METH_FASTCALL,
     PyDoc_STR("add(a, b) -> a + b")},
    {NULL, NULL, 0, NULL},
};

/* ---- module definition ---- */

static int
crash_on_end_exec(PyObject *Py_UNUSED(module))
{
    cache_t *cache = NULL;

    if (cache_created) {
        return 0;
    }
    cache = PyMem_RawCalloc(1, sizeof(cache_t));
    if (cache == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    cache->size = 4096;
    cache->buffer = PyMem_RawCalloc(1, cache->size);
    if (cache->buffer == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    shared_cache = cache;
    cache_created = 1;
    return 0;

error:
    if (cache != NULL) {
        PyMem_RawFree(cache->buffer);
        PyMem_RawFree(cache);
    }
    return -1;
}

static void
crash_on_end_free(void *Py_UNUSED(module))
{
    /* DEFECT: assumes it runs once per process.  The second call reads through NULL. */
    PyMem_RawFree(shared_cache->buffer);
    PyMem_RawFree(shared_cache);
    shared_cache = NULL;
}

static PyModuleDef_Slot crash_on_end_slots[] = {
    {Py_mod_exec, (void *)crash_on_end_exec},
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

static struct PyModuleDef crash_on_end_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = EXT_QUALNAME,
    .m_doc = PyDoc_STR("Multi-phase module whose m_free crashes the second time it runs."),
    .m_size = 0, /* m_free is only called for m_size >= 0 */
    .m_methods = crash_on_end_methods,
    .m_slots = crash_on_end_slots,
    .m_free = crash_on_end_free,
};

PyMODINIT_FUNC
EXT_INIT(EXT_NAME)(void)
{
    return PyModuleDef_Init(&crash_on_end_module);
}
