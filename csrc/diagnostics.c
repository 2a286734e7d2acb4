/* diagnostics.c: what the parent process reads when a battery crashes or hangs.  Breadcrumbs:
   one line per step on an inherited fd (progress.log, parsed by pytest_subinterp/crash.py), as
   _testembed flushes its progress.  Hang dump: the Python stack of every thread of every
   interpreter still alive.  Crash handler: the crashing thread's breadcrumb, native stack and,
   where CPython allows it, Python stack.  faulthandler cannot do this: it is process-global,
   dumps only the current interpreter's threads, and is refused in isolated interpreters. */

#include "subinterp.h"

#include <frameobject.h>

#include <errno.h>
#include <fcntl.h>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* ---- breadcrumbs ---- */

/* One line, written with a single write() so lines from threads never interleave; the parent
   reads the file after a crash, so nothing may sit in a user-space buffer. */
void
subinterp_breadcrumb(const char *fmt, ...)
{
    if (subinterp_progress_fd < 0) {
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
    ssize_t ignored = write(subinterp_progress_fd, line, (size_t)n);
    (void)ignored;
}

void
subinterp_set_where(int interp, int thread, int round, const char *phase)
{
    subinterp_here.interp = interp;
    subinterp_here.thread = thread;
    subinterp_here.round = round;
    subinterp_here.phase = phase;
    subinterp_breadcrumb("phase %s interp=%d thread=%d round=%d", phase, interp, thread, round);
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

/* Attached to one interpreter, write the Python stack of each of its threads.  Holding that
   interpreter's GIL means its other threads are not running, so their frames are stable. */
static void
subinterp_dump_attached(PyThreadState *ts, void *raw)
{
    dumper_arg *arg = raw;
    battery *b = arg->b;
    interp_slot *slot = &b->slots[arg->i];
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
        subinterp_breadcrumb("stack interpreter %d, %s (thread state %llu), most recent call first:",
                             slot->index + 1, who, (unsigned long long)PyThreadState_GetID(other));
        subinterp_write_frames(other);
    }
}

/* Dumper thread of one interpreter (see subinterp_dump_all_stacks). */
static void *
subinterp_dumper_main(void *raw)
{
    dumper_arg *arg = raw;
    battery *b = arg->b;
    /* NULL: a new thread has no thread state. */
    (void)subinterp_run_attached(NULL, b->slots[arg->i].interp, subinterp_dump_attached, arg);
    pthread_mutex_lock(&b->mu);
    arg->finished = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int
subinterp_dump_all_stacks(battery *b)
{
    int stuck = 0;
    for (int i = 0; i < b->n_interps; i++) {
        interp_slot *slot = &b->slots[i];
        if (slot->interp == NULL || slot->ended) {
            continue;
        }
        subinterp_breadcrumb("stack ---- interpreter %d/%d (%s) ----", i + 1, b->n_interps,
                             b->isolated ? "isolated" : "legacy");
        if (stuck && !b->isolated) {
            /* Legacy interpreters share one GIL: the holder that kept the first dumper out keeps
               every other one out too, and each try would cost the report 2 s more. */
            subinterp_breadcrumb("stack interpreter %d: the shared GIL is held (see above)", i + 1);
            continue;
        }
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
            stuck++;
            subinterp_breadcrumb("stack interpreter %d: its GIL was not released within 2 s (a "
                                 "thread holds it: a deadlock or a long C call with the GIL held)",
                                 i + 1);
        }
    }
    return stuck;
}

/* ---- stacks without the GIL ---- */

/* When a thread holds a GIL forever, nothing can attach to read its frames.  Each battery thread
   is then asked, by a signal, to write its own native stack and (where CPython lets us read
   frames without the GIL, as faulthandler does) its Python stack, into a non-blocking pipe; the
   watchdog copies the pipe into the breadcrumbs afterwards, as "stack " lines. */
#define SUBINTERP_STACK_SIGNAL SIGURG /* default action: ignored, so a stray one is harmless */

static int subinterp_stack_pipe[2] = {-1, -1};
static volatile sig_atomic_t subinterp_stack_written = 0;

static void subinterp_signal_safe_write(int fd, const char *text);
#if SUBINTERP_WALK_CRASHING_FRAMES
static void subinterp_signal_safe_python_stack(int fd, PyThreadState *ts);
#endif

static void
subinterp_stack_handler(int sig)
{
    (void)sig;
    int saved_errno = errno;
    int fd = subinterp_stack_pipe[1];
    void *frames[64];
    int n = backtrace(frames, 64);
    subinterp_signal_safe_write(fd, "native stack, most recent call first:\n");
    backtrace_symbols_fd(frames, n, fd);
#if SUBINTERP_CAN_DUMP_CRASHING_THREAD || SUBINTERP_WALK_CRASHING_FRAMES
    /* Only the thread state this OS thread runs: before 3.12 the unchecked current thread state
       is the process's GIL holder, which is exactly the thread that does not let go. */
    PyThreadState *ts = subinterp_current_ts_or_null();
    if (ts != NULL && ts->thread_id == PyThread_get_thread_ident()) {
#if SUBINTERP_CAN_DUMP_CRASHING_THREAD
        subinterp_signal_safe_write(fd, "Python stack, read without the GIL:\n");
        _Py_DumpTraceback(fd, ts);
#else
        subinterp_signal_safe_python_stack(fd, ts);
#endif
    }
#endif
    subinterp_stack_written = 1;
    errno = saved_errno;
}

/* Copy what one thread wrote into the pipe into "stack " breadcrumbs. */
static void
subinterp_drain_stack_pipe(void)
{
    char buf[8192];
    char line[400];
    size_t used = 0;
    ssize_t got;
    while ((got = read(subinterp_stack_pipe[0], buf, sizeof(buf))) > 0) {
        for (ssize_t k = 0; k < got; k++) {
            if (buf[k] == '\n' || used + 1 >= sizeof(line)) {
                line[used] = '\0';
                subinterp_breadcrumb("stack   %s", line);
                used = 0;
                if (buf[k] == '\n') {
                    continue;
                }
            }
            line[used++] = buf[k];
        }
    }
    if (used > 0) {
        line[used] = '\0';
        subinterp_breadcrumb("stack   %s", line);
    }
}

static void
subinterp_dump_one_thread(pthread_t thread, const char *who)
{
    subinterp_breadcrumb("stack %s, read without its GIL:", who);
    subinterp_stack_written = 0;
    if (pthread_kill(thread, SUBINTERP_STACK_SIGNAL) != 0) {
        subinterp_breadcrumb("stack   (the thread has exited)");
        return;
    }
    for (int waited = 0; !subinterp_stack_written && waited < 500; waited++) {
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    if (!subinterp_stack_written) {
        subinterp_breadcrumb("stack   (no answer within 0.5 s)");
    }
    subinterp_drain_stack_pipe();
}

void
subinterp_dump_stacks_without_gil(battery *b)
{
    if (pipe(subinterp_stack_pipe) != 0) {
        return;
    }
    for (int k = 0; k < 2; k++) {
        fcntl(subinterp_stack_pipe[k], F_SETFL, fcntl(subinterp_stack_pipe[k], F_GETFL) | O_NONBLOCK);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = subinterp_stack_handler;
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SUBINTERP_STACK_SIGNAL, &sa, NULL) != 0) {
        return;
    }
#if !SUBINTERP_CAN_DUMP_CRASHING_THREAD && !SUBINTERP_WALK_CRASHING_FRAMES
    subinterp_breadcrumb("stack (this Python exports no way to read Python frames without the "
                         "GIL: native stacks only)");
#endif
    char who[96];
    for (int i = 0; i < b->n_creators_started; i++) {
        snprintf(who, sizeof(who), "creator thread of interpreter %d/%d (fixtures / inner pytest)",
                 i + 1, b->n_interps);
        subinterp_dump_one_thread(b->creator_threads[i], who);
    }
    for (int t = 0; t < b->n_workers_started; t++) {
        snprintf(who, sizeof(who), "battery thread %d/%d", t + 1, b->n_threads);
        subinterp_dump_one_thread(b->worker_threads[t], who);
    }
}

/* ---- parent death ---- */

SUBINTERP_DOC(subinterp_set_parent_death_signal_doc,
"set_parent_death_signal(signum) -> bool\n\n"
"Ask the kernel to send signum to this process when the thread that forked it exits (Linux\n"
"prctl PR_SET_PDEATHSIG; cleared by fork, so every child arms its own).  False where the\n"
"platform has no such signal: the caller then watches its parent itself.");

PyObject *
subinterp_set_parent_death_signal(PyObject *Py_UNUSED(module), PyObject *args)
{
    int signum;
    if (!PyArg_ParseTuple(args, "i:set_parent_death_signal", &signum)) {
        return NULL;
    }
#ifdef PR_SET_PDEATHSIG
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)signum, 0, 0, 0) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
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

static void
subinterp_signal_safe_write(int fd, const char *text)
{
    ssize_t ignored = write(fd, text, strlen(text));
    (void)ignored;
}

static void
subinterp_signal_safe_crash_line(int sig)
{
    if (subinterp_progress_fd < 0) {
        return;
    }
    char line[256];
    size_t pos = 0, cap = sizeof(line);
    pos = subinterp_append(line, pos, cap, "crash ");
    pos = subinterp_append(line, pos, cap, subinterp_signal_name(sig));
    pos = subinterp_append(line, pos, cap, " interp=");
    pos = subinterp_append_int(line, pos, cap, subinterp_here.interp);
    pos = subinterp_append(line, pos, cap, " thread=");
    pos = subinterp_append_int(line, pos, cap, subinterp_here.thread);
    pos = subinterp_append(line, pos, cap, " round=");
    pos = subinterp_append_int(line, pos, cap, subinterp_here.round);
    pos = subinterp_append(line, pos, cap, " phase=");
    pos = subinterp_append(line, pos, cap, subinterp_here.phase ? subinterp_here.phase : "?");
    line[pos++] = '\n';
    ssize_t ignored = write(subinterp_progress_fd, line, pos);
    (void)ignored;
}

#if SUBINTERP_WALK_CRASHING_FRAMES
/* Write a str for the crash report as _Py_DumpASCII does: ASCII as is, anything else escaped,
   at most 500 characters; no allocation. */
static void
subinterp_signal_safe_str(int fd, PyObject *text)
{
    char buf[16];
    if (text == NULL || !PyUnicode_Check(text) || !PyUnicode_IS_READY(text)) {
        ssize_t ignored = write(fd, "???", 3);
        (void)ignored;
        return;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < length && i < 500; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        size_t n = 0;
        if (ch >= ' ' && ch < 0x7f) {
            buf[n++] = (char)ch;
        }
        else {
            static const char hex[] = "0123456789abcdef";
            int digits = ch <= 0xff ? 2 : ch <= 0xffff ? 4 : 8;
            buf[n++] = '\\';
            buf[n++] = digits == 2 ? 'x' : digits == 4 ? 'u' : 'U';
            for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) {
                buf[n++] = hex[(ch >> shift) & 0xf];
            }
        }
        ssize_t ignored = write(fd, buf, n);
        (void)ignored;
    }
}

/* 3.10 does not export _Py_DumpTraceback: walk the crashing thread's frames the way it does
   (same lines, most recent call first, at most 100 frames), reading PyFrameObject fields and
   calling nothing that allocates or takes a lock. */
static void
subinterp_signal_safe_python_stack(int fd, PyThreadState *ts)
{
    static const char header[] = "Stack (most recent call first):\n";
    ssize_t ignored = write(fd, header, sizeof(header) - 1);
    int depth = 0;
    for (PyFrameObject *frame = ts->frame; frame != NULL; frame = frame->f_back, depth++) {
        if (depth >= 100) {
            static const char truncated[] = "  ...\n";
            ignored = write(fd, truncated, sizeof(truncated) - 1);
            break;
        }
        PyCodeObject *code = frame->f_code;
        char line[32];
        size_t pos = subinterp_append(line, 0, sizeof(line), "  File \"");
        ignored = write(fd, line, pos);
        subinterp_signal_safe_str(fd, code->co_filename);
        pos = subinterp_append(line, 0, sizeof(line), "\", line ");
        /* PyFrame_GetLineNumber reads the code's line table: no allocation in 3.10. */
        pos = subinterp_append_int(line, pos, sizeof(line), PyFrame_GetLineNumber(frame));
        pos = subinterp_append(line, pos, sizeof(line), " in ");
        ignored = write(fd, line, pos);
        subinterp_signal_safe_str(fd, code->co_name);
        ignored = write(fd, "\n", 1);
    }
    (void)ignored;
}
#endif

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
    int battery_thread = subinterp_here.interp >= 0 || subinterp_here.thread >= 0;
    if (subinterp_progress_fd >= 0 && battery_thread) {
        static const char native[] = "native-stack-begin\n";
        ssize_t ignored = write(subinterp_progress_fd, native, sizeof(native) - 1);
        void *frames[64];
        int n = backtrace(frames, 64);
        backtrace_symbols_fd(frames, n, subinterp_progress_fd);
        static const char end[] = "native-stack-end\n";
        ignored = write(subinterp_progress_fd, end, sizeof(end) - 1);
#if SUBINTERP_CAN_DUMP_CRASHING_THREAD || SUBINTERP_WALK_CRASHING_FRAMES
        PyThreadState *ts = subinterp_current_ts_or_null();
        if (ts != NULL) {
            static const char py[] = "python-stack-begin\n";
            ignored = write(subinterp_progress_fd, py, sizeof(py) - 1);
#if SUBINTERP_CAN_DUMP_CRASHING_THREAD
            _Py_DumpTraceback(subinterp_progress_fd, ts);
#else
            subinterp_signal_safe_python_stack(subinterp_progress_fd, ts);
#endif
            static const char pyend[] = "python-stack-end\n";
            ignored = write(subinterp_progress_fd, pyend, sizeof(pyend) - 1);
        }
#endif
        (void)ignored;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

PyObject *
subinterp_install_crash_handler(PyObject *Py_UNUSED(module), PyObject *args)
{
    int fd;
    if (!PyArg_ParseTuple(args, "i:install_crash_handler", &fd)) {
        return NULL;
    }
    subinterp_progress_fd = fd;
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
