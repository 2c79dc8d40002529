/* The two crossings between Python and wasmtime that every WASM plugin request makes,
 * in C: a call into a guest export and a host function called by the guest; and the
 * view of the guest's memory that host functions read and write.
 *
 * edge/wasm/fastcall.py does the same through ctypes, and stays the path when this
 * module is not built (``edge native build`` builds it beside the mypyc modules). In
 * ctypes, each crossing builds argument objects, goes through libffi and releases or
 * takes the GIL: about a microsecond each, several times per request. Here a guest call
 * is a vectorcall that fills a stack buffer, and a host function is a C trampoline that
 * calls the Python function with the guest's integers.
 *
 * No wasmtime header is needed: the C API functions used here (wasmtime_func_call_
 * unchecked, wasmtime_trap_new, wasmtime_memory_data[_size]) are handed in by address
 * from wasmtime-py's own loaded library (``init``), and the two structs passed by value
 * are declared below as wasmtime 50 defines them (fastcall pins that version). The
 * rest (errors, traps, the failure policy) stays in Python: C only reports "the call
 * failed" to a Python function that raises the right GuestTrap.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <time.h>

typedef struct { uint64_t store_id; void *private_; } wfunc_t;  /* wasmtime_func_t */
typedef struct { uint64_t lo, hi; } raw_t;                     /* wasmtime_val_raw_t */
typedef void *(*call_fn)(void *ctx, const wfunc_t *f, raw_t *args, size_t n, void **trap);

#define MAX_SLOTS 16  /* the widest proxy-wasm signature has 12 parameters */

static call_fn call_unchecked = NULL;
typedef void *(*trap_new_fn)(const char *msg, size_t len);
static trap_new_fn trap_new = NULL;
typedef size_t (*mem_size_fn)(void *ctx, const void *mem);
typedef uint8_t *(*mem_data_fn)(void *ctx, const void *mem);
static mem_size_fn mem_size = NULL;
static mem_data_fn mem_data = NULL;
typedef void *(*error_new_fn)(const char *msg);
static error_new_fn error_new = NULL;
/* a guest preempted by the OS gets at most this many times its budget in wall time
 * (edge.wasm.fastcall.WALL_FACTOR, which a test holds equal) */
#define WALL_FACTOR 50
/* A guest call releases the GIL so a Python epoch ticker thread can interrupt a spinning
 * guest; with the native ticker (edge/wasm/epoch.py) nothing needs it, and keeping it
 * saves a lock hand-off per call. */
static int release_gil = 1;

/* wasm's byte order, whatever the host's */
static void put_u32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- StoreBase: the counters FastStore and both crossings share ------------------- */

typedef struct {
    PyObject_HEAD
    long long depth;    /* guest calls in progress (nested through host functions) */
    long long seq;      /* outermost calls so far: a new CPU budget each */
    long long ran;      /* bumped whenever guest code may have run (memory may grow) */
    PyObject *pending;  /* the exception a host function raised, or None */
    unsigned long long context;  /* wasmtime_context_t * */
    long long busy_ns;  /* time inside outermost calls, not yet in the metrics */
    /* the CPU budget of a call, and what the deadline callback keeps (see deadline_cb) */
    long long budget_ns;
    long long seen_seq;   /* the call the callback last looked at */
    long long cpu_mark;   /* its thread CPU time and monotonic time then */
    long long wall_mark;
    long long over_cpu;   /* a call stopped for its budget: CPU and wall ns it had used */
    long long over_wall;
    PyObject *memory;     /* the guest's MemoryBase, once instantiated (field hostcalls) */
    PyObject *alloc;      /* its allocator export (hostcalls that give a result) */
} StoreBase;

#define LL_MEMBER(name) {#name, T_LONGLONG, offsetof(StoreBase, name), 0, NULL}
static PyMemberDef StoreBase_members[] = {
    LL_MEMBER(depth),
    LL_MEMBER(seq),
    LL_MEMBER(ran),
    {"pending", T_OBJECT, offsetof(StoreBase, pending), 0, NULL},
    {"context", T_ULONGLONG, offsetof(StoreBase, context), 0, NULL},
    LL_MEMBER(busy_ns),
    LL_MEMBER(budget_ns),
    LL_MEMBER(seen_seq),
    LL_MEMBER(cpu_mark),
    LL_MEMBER(wall_mark),
    LL_MEMBER(over_cpu),
    LL_MEMBER(over_wall),
    {"memory", T_OBJECT, offsetof(StoreBase, memory), 0, NULL},
    {"alloc", T_OBJECT, offsetof(StoreBase, alloc), 0, NULL},
    {NULL},
};

static int StoreBase_traverse(StoreBase *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->pending);
    Py_VISIT(self->memory);
    Py_VISIT(self->alloc);
    return 0;
}

static int StoreBase_clear(StoreBase *self) {
    Py_CLEAR(self->pending);
    Py_CLEAR(self->memory);
    Py_CLEAR(self->alloc);
    return 0;
}

static void StoreBase_dealloc(StoreBase *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    StoreBase_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyType_Slot StoreBase_slots[] = {
    {Py_tp_members, StoreBase_members},
    {Py_tp_traverse, StoreBase_traverse},
    {Py_tp_clear, StoreBase_clear},
    {Py_tp_dealloc, StoreBase_dealloc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_doc, "Per-Store call state shared with the C crossings (edge.wasm.fastcall)."},
    {0, NULL},
};

static PyType_Spec StoreBase_spec = {
    "edge.wasm._wasmcall.StoreBase", sizeof(StoreBase), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, StoreBase_slots,
};

static PyTypeObject *StoreBase_type = NULL;

static long long clock_ns(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The store's epoch deadline callback (``env``: its StoreBase), FastStore._on_deadline
 * in C. It runs in the guest's thread, at most once a tick while guest code runs, and
 * touches no Python object, so it needs no GIL (calls may have released it). The first
 * look at a call marks its start; a later one stops the call with an error once it used
 * its CPU budget, or WALL_FACTOR times that in wall time (a preempted guest), leaving
 * the figures in over_cpu/over_wall for FastStore.raise_error's GuestTrap. */
static void *deadline_cb(void *ctx, void *env, uint64_t *delta, uint8_t *kind) {
    StoreBase *fs = (StoreBase *)env;
    long long cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    long long wall = clock_ns(CLOCK_MONOTONIC);
    if (fs->seen_seq != fs->seq) {
        /* first look at this call: it started at most one tick ago */
        fs->seen_seq = fs->seq;
        fs->cpu_mark = cpu;
        fs->wall_mark = wall;
    } else {
        long long used = cpu - fs->cpu_mark, elapsed = wall - fs->wall_mark;
        if (!fs->budget_ns || used >= fs->budget_ns || elapsed >= fs->budget_ns * WALL_FACTOR) {
            fs->over_cpu = used;
            fs->over_wall = elapsed;
            return error_new("edge: wasm CPU budget exhausted");
        }
    }
    *delta = 1;
    *kind = 0; /* WASMTIME_UPDATE_DEADLINE_CONTINUE */
    return NULL;
}

static int pending_set(StoreBase *fs) {
    return fs->pending != NULL && fs->pending != Py_None;
}

/* ---- Guest: one export, called with ints ------------------------------------------ */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    StoreBase *fs;
    PyObject *fail;  /* fail(err, trap): raises the GuestTrap of a failed call */
    wfunc_t func;
    int nparams;
    int nslots;
    int result;  /* 0: none, 1: i32 (returned unsigned), 2: i64 */
} Guest;

/* Calls the guest with its arguments in ``buf`` (the result comes back in buf[0]): 0, or
 * -1 with the exception ``fail`` raised for a trap, an error or a host function's. */
static int guest_run(Guest *g, raw_t *buf) {
    StoreBase *fs = g->fs;
    void *ctx = (void *)(uintptr_t)fs->context;
    void *trap = NULL;
    void *err;
    int outer = fs->depth == 0;
    struct timespec t0, t1;
    if (outer) {
        fs->seq++;
        clock_gettime(CLOCK_MONOTONIC, &t0);
    }
    fs->depth++;
    if (release_gil) {
        Py_BEGIN_ALLOW_THREADS
        err = call_unchecked(ctx, &g->func, buf, (size_t)g->nslots, &trap);
        Py_END_ALLOW_THREADS
    } else {
        err = call_unchecked(ctx, &g->func, buf, (size_t)g->nslots, &trap);
    }
    fs->depth--;
    if (outer) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fs->busy_ns += (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    }
    fs->ran++;
    if (err != NULL || trap != NULL || pending_set(fs)) {
        PyObject *r = PyObject_CallFunction(g->fail, "KK", (unsigned long long)(uintptr_t)err,
                                            (unsigned long long)(uintptr_t)trap);
        Py_XDECREF(r);
        if (r != NULL)
            PyErr_SetString(PyExc_RuntimeError, "guest call failed but fail() returned");
        return -1;
    }
    return 0;
}

static PyObject *Guest_vectorcall(PyObject *self_, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames) {
    Guest *g = (Guest *)self_;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL || n != g->nparams) {
        PyErr_Format(PyExc_TypeError, "guest function takes %d positional arguments",
                     g->nparams);
        return NULL;
    }
    raw_t buf[MAX_SLOTS];
    for (Py_ssize_t i = 0; i < n; i++) {
        /* an i32 parameter reads the low half; negative i64 values wrap as in wasm */
        unsigned long long v = PyLong_AsUnsignedLongLongMask(args[i]);
        if (v == (unsigned long long)-1 && PyErr_Occurred())
            return NULL;
        buf[i].lo = v;
        buf[i].hi = 0;
    }
    if (guest_run(g, buf) < 0)
        return NULL;
    if (g->result == 1)
        return PyLong_FromUnsignedLong((unsigned long)(uint32_t)buf[0].lo);
    if (g->result == 2)
        return PyLong_FromLongLong((long long)buf[0].lo);
    Py_RETURN_NONE;
}

static int Guest_init(Guest *self, PyObject *args, PyObject *kw) {
    PyObject *fs;
    unsigned long long func_addr;
    int nparams, result;
    PyObject *fail;
    if (!PyArg_ParseTuple(args, "O!KiiO", StoreBase_type, &fs, &func_addr, &nparams, &result,
                          &fail))
        return -1;
    if (nparams < 0 || nparams > MAX_SLOTS || result < 0 || result > 2 || !func_addr) {
        PyErr_SetString(PyExc_ValueError, "bad guest function description");
        return -1;
    }
    if (call_unchecked == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "edge.wasm._wasmcall.init() was not called");
        return -1;
    }
    Py_INCREF(fs);
    Py_XSETREF(self->fs, (StoreBase *)fs);
    Py_INCREF(fail);
    Py_XSETREF(self->fail, fail);
    memcpy(&self->func, (const void *)(uintptr_t)func_addr, sizeof(wfunc_t));
    self->nparams = nparams;
    self->nslots = nparams > (result ? 1 : 0) ? nparams : 1;
    self->result = result;
    self->vectorcall = Guest_vectorcall;
    return 0;
}

static int Guest_traverse(Guest *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fs);
    Py_VISIT(self->fail);
    return 0;
}

static int Guest_clear(Guest *self) {
    Py_CLEAR(self->fs);
    Py_CLEAR(self->fail);
    return 0;
}

static void Guest_dealloc(Guest *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Guest_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMemberDef Guest_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Guest, vectorcall), READONLY, NULL},
    {NULL},
};

static PyType_Slot Guest_slots[] = {
    {Py_tp_init, Guest_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, Guest_members},
    {Py_tp_traverse, Guest_traverse},
    {Py_tp_clear, Guest_clear},
    {Py_tp_dealloc, Guest_dealloc},
    {Py_tp_doc, "Guest(store, func_addr, nparams, result, fail): a guest export as a callable."},
    {0, NULL},
};

static PyTypeObject *Guest_type = NULL;

static PyType_Spec Guest_spec = {
    "edge.wasm._wasmcall.Guest", sizeof(Guest), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL, Guest_slots,
};

/* ---- Host: a Python function the guest calls -------------------------------------- */

typedef struct {
    PyObject_HEAD
    StoreBase *fs;
    PyObject *fn;
    PyObject *soft;  /* an exception class whose ``status`` is the answer, or None */
    int nparams;
    unsigned int i64_params;  /* bit i: parameter i is an i64 (passed signed) */
    int result;               /* 0: none, 1: i32, 2: i64 */
    /* not 0: a "field" hostcall (map_type, name_ptr, name_len, value_ptr, value_len),
     * whose fn gets (map_type, field_of(...) with this limit) */
    unsigned long long field_limit;
    /* not 0: the last two parameters are where a result goes (ret_ptr, ret_len); fn gets
     * the others and answers bytes, which this crossing gives the guest, or a status */
    int gives;
    /* the last field read, which a filter setting the same header on every request
     * reads again: its bytes (name then value) and the (name, value) tuple made of them */
    PyObject *last;
    size_t last_kl, last_vl;
    uint8_t last_bytes[96];
} Host;

static PyTypeObject *MemoryBase_type = NULL;
static PyObject *field_of(PyObject *mem, unsigned long long kp, unsigned long long kl,
                          unsigned long long vp, unsigned long long vl,
                          unsigned long long limit);
static PyObject *host_field(Host *h, unsigned long long kp, unsigned long long kl,
                            unsigned long long vp, unsigned long long vl);
static int give_to(PyObject *mem, unsigned long long rp, unsigned long long rl, PyObject *data,
                   PyObject *alloc);
/* a gives hostcall's answer when its result cannot be given (Status.INVALID_MEMORY_ACCESS,
 * which a test holds equal) */
#define GIVE_FAILED 6

/* The pending exception, normalized (a new reference; None if there was none). */
static PyObject *take_exception(void) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value == NULL) {
        Py_INCREF(Py_None);
        value = Py_None;
    }
    return value;
}

/* A Python exception must not unwind through wasmtime: a ``soft`` one answers with its
 * ``status``; any other becomes a trap made by FastStore.trap_from, which keeps the
 * exception to re-raise from the guest call. */
static void *host_failed(Host *h, raw_t *a) {
    PyObject *value = take_exception();
    if (h->result && h->soft != Py_None && PyObject_IsInstance(value, h->soft) == 1) {
        PyObject *st = PyObject_GetAttrString(value, "status");
        unsigned long long s = st != NULL ? PyLong_AsUnsignedLongLongMask(st) : 0;
        Py_XDECREF(st);
        if (st != NULL && !(s == (unsigned long long)-1 && PyErr_Occurred())) {
            a[0].lo = h->result == 1 ? (uint32_t)s : s;
            a[0].hi = 0;
            Py_DECREF(value);
            return NULL;
        }
        /* a soft exception without a usable status: a trap like any other */
        Py_DECREF(value);
        value = take_exception();
    }
    void *trap = NULL;
    PyObject *t = PyObject_CallMethod((PyObject *)h->fs, "trap_from", "O", value);
    if (t != NULL) {
        trap = PyLong_AsVoidPtr(t);
        Py_DECREF(t);
    }
    PyErr_Clear();
    if (trap == NULL) {
        /* trap_from itself failed: still stop the guest */
        static const char msg[] = "edge: host function failed";
        trap = trap_new(msg, sizeof msg - 1);
    }
    Py_DECREF(value);
    return trap;
}

static void *host_trampoline(void *env, void *caller, raw_t *a, size_t n) {
    Host *h = (Host *)env;
    PyGILState_STATE gs = PyGILState_Ensure();
    void *trap = NULL;
    PyObject *args[MAX_SLOTS];
    int i;
    h->fs->ran++;
    /* a field hostcall passes its map type alone as an int (see below) */
    int nargs = h->field_limit ? 1 : h->gives ? h->nparams - 2 : h->nparams;
    for (i = 0; i < nargs; i++) {
        if (h->i64_params & (1u << i))
            args[i] = PyLong_FromLongLong((long long)a[i].lo);
        else
            args[i] = PyLong_FromUnsignedLong((unsigned long)(uint32_t)a[i].lo);
        if (args[i] == NULL)
            break;
    }
    PyObject *r = NULL;
    if (i == nargs && h->field_limit) {
        /* the field read here: (map_type, field) instead of five ints */
        PyObject *f = host_field(h, a[1].lo & 0xFFFFFFFFu, a[2].lo & 0xFFFFFFFFu,
                                 a[3].lo & 0xFFFFFFFFu, a[4].lo & 0xFFFFFFFFu);
        if (f != NULL) {
            PyObject *two[2] = {args[0], f};
            r = PyObject_Vectorcall(h->fn, two, 2, NULL);
            Py_DECREF(f);
        }
    } else if (i == nargs) {
        r = PyObject_Vectorcall(h->fn, args, (size_t)nargs, NULL);
    }
    for (int j = 0; j < i; j++)
        Py_DECREF(args[j]);
    if (r != NULL && h->gives && PyBytes_Check(r)) {
        int code = give_to(h->fs->memory, a[nargs].lo & 0xFFFFFFFFu,
                           a[nargs + 1].lo & 0xFFFFFFFFu, r, h->fs->alloc);
        if (code >= 0) {
            a[0].lo = code ? GIVE_FAILED : 0;
            a[0].hi = 0;
        }
        Py_DECREF(r);
    } else if (r != NULL) {
        if (h->result) {
            unsigned long long v = PyLong_AsUnsignedLongLongMask(r);
            if (!(v == (unsigned long long)-1 && PyErr_Occurred())) {
                a[0].lo = h->result == 1 ? (uint32_t)v : v;
                a[0].hi = 0;
            }
        }
        Py_DECREF(r);
    }
    if (PyErr_Occurred())
        trap = host_failed(h, a);
    PyGILState_Release(gs);
    return trap;
}

static int Host_init(Host *self, PyObject *args, PyObject *kw) {
    PyObject *fs, *fn, *soft;
    int nparams, result;
    unsigned int i64_params;
    unsigned long long field_limit = 0;
    int gives = 0;
    if (!PyArg_ParseTuple(args, "O!OiIiO|Kp", StoreBase_type, &fs, &fn, &nparams, &i64_params,
                          &result, &soft, &field_limit, &gives))
        return -1;
    if (nparams < 0 || nparams > MAX_SLOTS || result < 0 || result > 2 ||
        (field_limit && (nparams != 5 || result != 1 || i64_params)) ||
        (gives && (field_limit || nparams < 2 || result != 1 ||
                   (i64_params >> (nparams - 2))))) {
        PyErr_SetString(PyExc_ValueError, "bad host function description");
        return -1;
    }
    Py_INCREF(fs);
    Py_XSETREF(self->fs, (StoreBase *)fs);
    Py_INCREF(fn);
    Py_XSETREF(self->fn, fn);
    Py_INCREF(soft);
    Py_XSETREF(self->soft, soft);
    self->nparams = nparams;
    self->i64_params = i64_params;
    self->result = result;
    self->field_limit = field_limit;
    self->gives = gives;
    return 0;
}

static int Host_traverse(Host *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fs);
    Py_VISIT(self->fn);
    Py_VISIT(self->soft);
    Py_VISIT(self->last);
    return 0;
}

static int Host_clear(Host *self) {
    Py_CLEAR(self->fs);
    Py_CLEAR(self->fn);
    Py_CLEAR(self->soft);
    Py_CLEAR(self->last);
    return 0;
}

static void Host_dealloc(Host *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Host_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyType_Slot Host_slots[] = {
    {Py_tp_init, Host_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_traverse, Host_traverse},
    {Py_tp_clear, Host_clear},
    {Py_tp_dealloc, Host_dealloc},
    {Py_tp_doc, "Host(store, fn, nparams, i64_params, result, soft, field_limit=0, gives=False): "
                "the env of TRAMPOLINE."},
    {0, NULL},
};

static PyType_Spec Host_spec = {
    "edge.wasm._wasmcall.Host", sizeof(Host), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    Host_slots,
};

/* ---- MemoryBase: a memoryview over linear memory, cached between guest calls -------- */

typedef struct {
    PyObject_HEAD
    StoreBase *fs;
    void *mem;       /* wasmtime_memory_t *, kept alive by the Python subclass */
    long long seen;  /* fs->ran when the view was last checked */
    size_t size;
    uint8_t *data;
    PyObject *view;
} MemoryBase;

static int MemoryBase_init(MemoryBase *self, PyObject *args, PyObject *kw) {
    PyObject *fs;
    unsigned long long addr;
    if (!PyArg_ParseTuple(args, "O!K", StoreBase_type, &fs, &addr))
        return -1;
    if (!addr || mem_size == NULL) {
        PyErr_SetString(PyExc_ValueError, "bad memory, or init() was not called");
        return -1;
    }
    Py_INCREF(fs);
    Py_XSETREF(self->fs, (StoreBase *)fs);
    self->mem = (void *)(uintptr_t)addr;
    self->seen = -1;
    self->size = (size_t)-1;
    Py_CLEAR(self->view);
    return 0;
}

/* The view is rebuilt only when the memory's size changed (memory.grow), and the size
 * is asked only when guest code may have run since the last look. */
static int MemoryBase_refresh(MemoryBase *self) {
    StoreBase *fs = self->fs;
    if (fs == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "memory not initialised");
        return -1;
    }
    if (self->view != NULL && self->seen == fs->ran)
        return 0;
    void *ctx = (void *)(uintptr_t)fs->context;
    size_t size = mem_size(ctx, self->mem);
    if (self->view == NULL || size != self->size) {
        uint8_t *data = mem_data(ctx, self->mem);
        PyObject *v;
        if (size && data) {
            v = PyMemoryView_FromMemory((char *)data, (Py_ssize_t)size, PyBUF_WRITE);
        } else {
            size = 0;
            data = NULL;
            v = PyMemoryView_FromMemory((char *)"", 0, PyBUF_WRITE);
        }
        if (v == NULL)
            return -1;
        Py_XSETREF(self->view, v);
        self->size = size;
        self->data = data;
    }
    self->seen = fs->ran;
    return 0;
}

static PyObject *MemoryBase_view(MemoryBase *self, PyObject *unused) {
    if (MemoryBase_refresh(self) < 0)
        return NULL;
    Py_INCREF(self->view);
    return self->view;
}

/* A memory method's arguments: ``want`` of them (else TypeError with ``usage``), the
 * first ``n`` unsigned integers into ``out``; -1 with an exception set. */
static int u64_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want, const char *usage,
                    unsigned long long *out, int n) {
    if (nargs != want) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        out[i] = PyLong_AsUnsignedLongLong(args[i]);
        if (out[i] == (unsigned long long)-1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

/* read(ptr, size) -> bytes, or None when [ptr, ptr+size) is not inside the memory */
static PyObject *MemoryBase_read(MemoryBase *self, PyObject *const *args, Py_ssize_t n) {
    unsigned long long a[2];
    if (u64_args(args, n, 2, "read(ptr, size)", a, 2) < 0)
        return NULL;
    unsigned long long ptr = a[0], size = a[1];
    if (MemoryBase_refresh(self) < 0)
        return NULL;
    if (ptr > self->size || size > self->size - ptr)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)self->data + ptr, (Py_ssize_t)size);
}

/* A header field a guest passes by pointers: (lower-cased name, value) as latin-1 str,
 * or the int code of what is wrong with it (edge.wasm.context.FIELD_ERRORS), checked in
 * the order of hostcalls' text() and context.check_field: 1 a length past limit, 2 out
 * of bounds, 3 an empty name or CR, LF or NUL in either, 4 a space in the name or a
 * ':' past its first byte. One C call instead of two reads, two decodes and a lower(). */
static PyObject *MemoryBase_field(MemoryBase *self, PyObject *const *args, Py_ssize_t n) {
    unsigned long long a[5];
    if (u64_args(args, n, 5, "field(name_ptr, name_len, value_ptr, value_len, limit)", a, 5) < 0)
        return NULL;
    return field_of((PyObject *)self, a[0], a[1], a[2], a[3], a[4]);
}

/* ``field`` of the MemoryBase ``mem``; code 2 (out of bounds) when ``mem`` is not one
 * (a host function called before the instance's memory is known) */
static PyObject *field_of(PyObject *mem, unsigned long long kp, unsigned long long kl,
                          unsigned long long vp, unsigned long long vl,
                          unsigned long long limit) {
    if (mem == NULL || !PyObject_TypeCheck(mem, MemoryBase_type))
        return PyLong_FromLong(2);
    MemoryBase *self = (MemoryBase *)mem;
    if (MemoryBase_refresh(self) < 0)
        return NULL;
    size_t size = self->size;
    if (kl > limit)
        return PyLong_FromLong(1);
    if (kp > size || kl > size - kp)
        return PyLong_FromLong(2);
    if (vl > limit)
        return PyLong_FromLong(1);
    if (vp > size || vl > size - vp)
        return PyLong_FromLong(2);
    const uint8_t *k = self->data + kp, *v = self->data + vp;
    int ctl = kl == 0, bad_name = 0;
    for (size_t i = 0; i < kl; i++) {
        uint8_t c = k[i];
        ctl |= c == 13 || c == 10 || c == 0;
        bad_name |= c == 32 || (c == 58 && i > 0);
    }
    for (size_t i = 0; i < vl; i++) {
        uint8_t c = v[i];
        ctl |= c == 13 || c == 10 || c == 0;
    }
    if (ctl)
        return PyLong_FromLong(3);
    if (bad_name)
        return PyLong_FromLong(4);
    /* str.lower() of latin-1: A-Z and U+00C0-U+00DE but U+00D7 move up by 0x20 */
    char small[256];
    char *low = kl <= sizeof small ? small : PyMem_Malloc(kl);
    if (low == NULL)
        return PyErr_NoMemory();
    for (size_t i = 0; i < kl; i++) {
        uint8_t c = k[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7))
            c += 0x20;
        low[i] = (char)c;
    }
    PyObject *name = PyUnicode_DecodeLatin1(low, (Py_ssize_t)kl, NULL);
    if (low != small)
        PyMem_Free(low);
    if (name == NULL)
        return NULL;
    PyObject *value = PyUnicode_DecodeLatin1((const char *)v, (Py_ssize_t)vl, NULL);
    if (value == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    PyObject *t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(name);
        Py_DECREF(value);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, name);
    PyTuple_SET_ITEM(t, 1, value);
    return t;
}

/* ``field_of`` for a field hostcall, with the last field it read kept: bytes equal to
 * those read last give the same (name, value) tuple without decoding them again. */
static PyObject *host_field(Host *h, unsigned long long kp, unsigned long long kl,
                            unsigned long long vp, unsigned long long vl) {
    PyObject *mem = h->fs->memory;
    if (mem == NULL || !PyObject_TypeCheck(mem, MemoryBase_type))
        return field_of(mem, kp, kl, vp, vl, h->field_limit);
    MemoryBase *m = (MemoryBase *)mem;
    if (h->last != NULL && kl == h->last_kl && vl == h->last_vl) {
        if (MemoryBase_refresh(m) < 0)
            return NULL;
        size_t size = m->size;
        if (kp <= size && kl <= size - kp && vp <= size && vl <= size - vp &&
            memcmp(m->data + kp, h->last_bytes, kl) == 0 &&
            memcmp(m->data + vp, h->last_bytes + kl, vl) == 0) {
            Py_INCREF(h->last);
            return h->last;
        }
    }
    PyObject *f = field_of(mem, kp, kl, vp, vl, h->field_limit);
    if (f != NULL && PyTuple_Check(f) && kl + vl <= sizeof h->last_bytes) {
        /* field_of checked the bounds against the memory as it is now */
        memcpy(h->last_bytes, m->data + kp, kl);
        memcpy(h->last_bytes + kl, m->data + vp, vl);
        h->last_kl = kl;
        h->last_vl = vl;
        Py_INCREF(f);
        Py_XSETREF(h->last, f);
    }
    return f;
}

/* give(ret_ptr, ret_len, data, alloc) -> 0, or the code of what is wrong: 1 a result
 * pointer out of bounds, 2 the allocator returned 0, 3 the block it returned is not
 * inside the memory. ``data`` copied into a block of guest memory from ``alloc(size)``
 * (a guest call, after which the memory may have grown), and the block's address and
 * size written at ret_ptr and ret_len: how a host function hands the guest a result. */
/* ``alloc(size)``: the guest's allocator, called directly when it is a Guest. The address
 * (0: it failed), or -1 with an exception set. */
static long long guest_alloc(PyObject *alloc, unsigned long long size) {
    if (Py_IS_TYPE(alloc, Guest_type) && ((Guest *)alloc)->nparams == 1 &&
        ((Guest *)alloc)->result == 1) {
        raw_t buf[1] = {{size, 0}};
        if (guest_run((Guest *)alloc, buf) < 0)
            return -1;
        return (long long)(uint32_t)buf[0].lo;
    }
    PyObject *n = PyLong_FromUnsignedLongLong(size);
    if (n == NULL)
        return -1;
    PyObject *r = PyObject_CallOneArg(alloc, n);
    Py_DECREF(n);
    if (r == NULL)
        return -1;
    unsigned long long addr = PyLong_AsUnsignedLongLongMask(r);
    Py_DECREF(r);
    if (addr == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    return (long long)(addr & 0xffffffffULL);
}

/* MemoryBase.give: 0, a code of GIVE_ERRORS, or -1 with an exception set. */
static int memory_give(MemoryBase *self, unsigned long long rp, unsigned long long rl,
                       PyObject *data, PyObject *alloc) {
    Py_ssize_t len = PyBytes_GET_SIZE(data);
    if (MemoryBase_refresh(self) < 0)
        return -1;
    if (self->size < 4 || rp > self->size - 4 || rl > self->size - 4)
        return 1;
    if (len == 0) {
        put_u32le(self->data + rp, 0);
        put_u32le(self->data + rl, 0);
        return 0;
    }
    if ((unsigned long long)len > 0xffffffffULL)
        return 3;
    Py_INCREF(data); /* held across the guest call */
    long long addr = guest_alloc(alloc, (unsigned long long)len);
    int code = 0;
    if (addr < 0)
        code = -1;
    else if (!addr)
        code = 2;
    else if (MemoryBase_refresh(self) < 0)
        code = -1;
    else if ((size_t)addr > self->size || (size_t)len > self->size - (size_t)addr)
        code = 3;
    else {
        /* memory never shrinks: the result pointers checked above are still inside */
        memcpy(self->data + addr, PyBytes_AS_STRING(data), (size_t)len);
        put_u32le(self->data + rp, (uint32_t)addr);
        put_u32le(self->data + rl, (uint32_t)len);
    }
    Py_DECREF(data);
    return code;
}

/* memory_give for a gives hostcall: the code 1 (out of bounds) before the memory is known */
static int give_to(PyObject *mem, unsigned long long rp, unsigned long long rl, PyObject *data,
                   PyObject *alloc) {
    if (mem == NULL || alloc == NULL || alloc == Py_None || !PyObject_TypeCheck(mem, MemoryBase_type))
        return 1;
    return memory_give((MemoryBase *)mem, rp, rl, data, alloc);
}

static PyObject *MemoryBase_give(MemoryBase *self, PyObject *const *args, Py_ssize_t n) {
    unsigned long long a[2];
    if (u64_args(args, n, 4, "give(ret_ptr, ret_len, data, alloc)", a, 2) < 0)
        return NULL;
    if (!PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "give: data must be bytes");
        return NULL;
    }
    int code = memory_give(self, a[0], a[1], args[2], args[3]);
    return code < 0 ? NULL : PyLong_FromLong(code);
}

/* write(ptr, data) -> True, or False when it would not fit inside the memory */
static PyObject *MemoryBase_write(MemoryBase *self, PyObject *const *args, Py_ssize_t n) {
    unsigned long long ptr;
    if (u64_args(args, n, 2, "write(ptr, data)", &ptr, 1) < 0)
        return NULL;
    Py_buffer buf;
    if (PyObject_GetBuffer(args[1], &buf, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *ok = Py_False;
    if (MemoryBase_refresh(self) < 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    if (ptr <= self->size && (size_t)buf.len <= self->size - ptr) {
        if (buf.len)
            memcpy(self->data + ptr, buf.buf, (size_t)buf.len);
        ok = Py_True;
    }
    PyBuffer_Release(&buf);
    Py_INCREF(ok);
    return ok;
}

static PyObject *MemoryBase_size(MemoryBase *self, void *closure) {
    if (self->fs == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "memory not initialised");
        return NULL;
    }
    return PyLong_FromSize_t(mem_size((void *)(uintptr_t)self->fs->context, self->mem));
}

static int MemoryBase_traverse(MemoryBase *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fs);
    Py_VISIT(self->view);
    return 0;
}

static int MemoryBase_clear(MemoryBase *self) {
    Py_CLEAR(self->fs);
    Py_CLEAR(self->view);
    return 0;
}

static void MemoryBase_dealloc(MemoryBase *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    MemoryBase_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef MemoryBase_methods[] = {
    {"view", (PyCFunction)MemoryBase_view, METH_NOARGS,
     "The memoryview over linear memory; call again after any guest call."},
    {"read", (PyCFunction)(void (*)(void))MemoryBase_read, METH_FASTCALL,
     "read(ptr, size): a copy of those bytes, or None when out of bounds."},
    {"write", (PyCFunction)(void (*)(void))MemoryBase_write, METH_FASTCALL,
     "write(ptr, data): True, or False (nothing written) when out of bounds."},
    {"give", (PyCFunction)(void (*)(void))MemoryBase_give, METH_FASTCALL,
     "give(ret_ptr, ret_len, data, alloc): 0, or an error code (PluginVM.give)."},
    {"field", (PyCFunction)(void (*)(void))MemoryBase_field, METH_FASTCALL,
     "field(kp, kl, vp, vl, limit): (lower-cased name, value), or an error code."},
    {NULL},
};

static PyGetSetDef MemoryBase_getset[] = {
    {"size", (getter)MemoryBase_size, NULL, "The memory's size in bytes now.", NULL},
    {NULL},
};

static PyType_Slot MemoryBase_slots[] = {
    {Py_tp_init, MemoryBase_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_methods, MemoryBase_methods},
    {Py_tp_getset, MemoryBase_getset},
    {Py_tp_traverse, MemoryBase_traverse},
    {Py_tp_clear, MemoryBase_clear},
    {Py_tp_dealloc, MemoryBase_dealloc},
    {Py_tp_doc, "MemoryBase(store, memory_addr): GuestMemory's view() in C."},
    {0, NULL},
};

static PyType_Spec MemoryBase_spec = {
    "edge.wasm._wasmcall.MemoryBase", sizeof(MemoryBase), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, MemoryBase_slots,
};

/* ---- module ------------------------------------------------------------------------ */

static PyObject *wc_init(PyObject *mod, PyObject *args) {
    unsigned long long call, trap, msize, mdata, enew;
    if (!PyArg_ParseTuple(args, "KKKKK", &call, &trap, &msize, &mdata, &enew))
        return NULL;
    if (!call || !trap || !msize || !mdata || !enew) {
        PyErr_SetString(PyExc_ValueError, "null wasmtime function address");
        return NULL;
    }
    call_unchecked = (call_fn)(uintptr_t)call;
    trap_new = (trap_new_fn)(uintptr_t)trap;
    mem_size = (mem_size_fn)(uintptr_t)msize;
    mem_data = (mem_data_fn)(uintptr_t)mdata;
    error_new = (error_new_fn)(uintptr_t)enew;
    Py_RETURN_NONE;
}

static PyObject *wc_set_release_gil(PyObject *mod, PyObject *arg) {
    int v = PyObject_IsTrue(arg);
    if (v < 0)
        return NULL;
    release_gil = v;
    Py_RETURN_NONE;
}

/* serialize_strs(flat, npairs): the proxy-wasm pair format of [k0, v0, k1, v1, ...],
 * strs of one byte per character (latin-1, as header fields are kept): u32 count, the
 * u32 lengths, then each string and a NUL. One allocation and a copy per string. */
static PyObject *wc_serialize_strs(PyObject *mod, PyObject *const *args, Py_ssize_t n) {
    if (n != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "serialize_strs(flat: list[str], npairs: int)");
        return NULL;
    }
    PyObject *flat = args[0];
    Py_ssize_t npairs = PyLong_AsSsize_t(args[1]);
    if (npairs == -1 && PyErr_Occurred())
        return NULL;
    if (npairs < 0 || npairs > PyList_GET_SIZE(flat) / 2 || npairs > 0x3fffffff) {
        PyErr_SetString(PyExc_ValueError, "npairs does not match the list");
        return NULL;
    }
    Py_ssize_t items = 2 * npairs, total = 4 + 4 * items;
    for (Py_ssize_t i = 0; i < items; i++) {
        PyObject *o = PyList_GET_ITEM(flat, i);
        if (!PyUnicode_Check(o) || PyUnicode_READY(o) < 0 || PyUnicode_KIND(o) != PyUnicode_1BYTE_KIND) {
            PyErr_SetString(PyExc_ValueError, "header fields must be latin-1 str");
            return NULL;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(o);
        if (len > 0xffffffffLL || total > PY_SSIZE_T_MAX - len - 1) {
            PyErr_SetString(PyExc_OverflowError, "header map too large");
            return NULL;
        }
        total += len + 1;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL)
        return NULL;
    uint8_t *p = (uint8_t *)PyBytes_AS_STRING(out);
    uint8_t *body = p + 4 + 4 * items;
    put_u32le(p, (uint32_t)npairs);
    for (Py_ssize_t i = 0; i < items; i++) {
        PyObject *o = PyList_GET_ITEM(flat, i);
        uint32_t len = (uint32_t)PyUnicode_GET_LENGTH(o);
        put_u32le(p + 4 + 4 * i, len);
        memcpy(body, PyUnicode_1BYTE_DATA(o), len);
        body += len;
        *body++ = 0;
    }
    return out;
}

static PyMethodDef wc_methods[] = {
    {"init", wc_init, METH_VARARGS,
     "init(call, trap_new, memory_data_size, memory_data, error_new): addresses of those"
     " wasmtime_* functions in wasmtime-py's library."},
    {"serialize_strs", (PyCFunction)(void (*)(void))wc_serialize_strs, METH_FASTCALL,
     "serialize_strs(flat, npairs): the pair format of [k0, v0, ...] (latin-1 str)."},
    {"set_release_gil", wc_set_release_gil, METH_O,
     "set_release_gil(flag): whether guest calls release the GIL (default True)."},
    {NULL, NULL, 0, NULL},
};

static int wc_exec(PyObject *m) {
    StoreBase_type = (PyTypeObject *)PyType_FromSpec(&StoreBase_spec);
    if (StoreBase_type == NULL || PyModule_AddObjectRef(m, "StoreBase", (PyObject *)StoreBase_type) < 0)
        return -1;
    Guest_type = (PyTypeObject *)PyType_FromSpec(&Guest_spec);
    if (Guest_type == NULL || PyModule_AddObjectRef(m, "Guest", (PyObject *)Guest_type) < 0)
        return -1;
    PyObject *host = PyType_FromSpec(&Host_spec);
    if (host == NULL || PyModule_AddObject(m, "Host", host) < 0)
        return -1;
    MemoryBase_type = (PyTypeObject *)PyType_FromSpec(&MemoryBase_spec);
    if (MemoryBase_type == NULL ||
        PyModule_AddObjectRef(m, "MemoryBase", (PyObject *)MemoryBase_type) < 0)
        return -1;
    if (PyModule_AddObject(m, "DEADLINE", PyLong_FromVoidPtr((void *)deadline_cb)) < 0)
        return -1;
    if (PyModule_AddIntConstant(m, "WALL_FACTOR", WALL_FACTOR) < 0)
        return -1;
    if (PyModule_AddIntConstant(m, "GIVE_FAILED", GIVE_FAILED) < 0)
        return -1;
    if (PyModule_AddObject(m, "TRAMPOLINE", PyLong_FromVoidPtr((void *)host_trampoline)) < 0)
        return -1;
    return 0;
}

static PyModuleDef_Slot wc_slots[] = {
    {Py_mod_exec, wc_exec},
    {0, NULL},
};

static struct PyModuleDef wc_module = {
    PyModuleDef_HEAD_INIT, "edge.wasm._wasmcall",
    "Guest calls and host functions for wasmtime, in C (see edge/wasm/fastcall.py).", 0,
    wc_methods, wc_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__wasmcall(void) {
    return PyModuleDef_Init(&wc_module);
}
