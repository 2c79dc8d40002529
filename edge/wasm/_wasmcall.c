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
/* A guest call releases the GIL so a Python epoch ticker thread can interrupt a spinning
 * guest; with the native ticker (edge/wasm/epoch.py) nothing needs it, and keeping it
 * saves a lock hand-off per call. */
static int release_gil = 1;

/* ---- StoreBase: the counters FastStore and both crossings share ------------------- */

typedef struct {
    PyObject_HEAD
    long long depth;    /* guest calls in progress (nested through host functions) */
    long long seq;      /* outermost calls so far: a new CPU budget each */
    long long ran;      /* bumped whenever guest code may have run (memory may grow) */
    PyObject *pending;  /* the exception a host function raised, or None */
    unsigned long long context;  /* wasmtime_context_t * */
} StoreBase;

static PyMemberDef StoreBase_members[] = {
    {"depth", T_LONGLONG, offsetof(StoreBase, depth), 0, NULL},
    {"seq", T_LONGLONG, offsetof(StoreBase, seq), 0, NULL},
    {"ran", T_LONGLONG, offsetof(StoreBase, ran), 0, NULL},
    {"pending", T_OBJECT, offsetof(StoreBase, pending), 0, NULL},
    {"context", T_ULONGLONG, offsetof(StoreBase, context), 0, NULL},
    {NULL},
};

static int StoreBase_traverse(StoreBase *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->pending);
    return 0;
}

static int StoreBase_clear(StoreBase *self) {
    Py_CLEAR(self->pending);
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
    StoreBase *fs = g->fs;
    void *ctx = (void *)(uintptr_t)fs->context;
    void *trap = NULL;
    void *err;
    if (fs->depth == 0)
        fs->seq++;
    fs->depth++;
    if (release_gil) {
        Py_BEGIN_ALLOW_THREADS
        err = call_unchecked(ctx, &g->func, buf, (size_t)g->nslots, &trap);
        Py_END_ALLOW_THREADS
    } else {
        err = call_unchecked(ctx, &g->func, buf, (size_t)g->nslots, &trap);
    }
    fs->depth--;
    fs->ran++;
    if (err != NULL || trap != NULL || pending_set(fs)) {
        PyObject *r = PyObject_CallFunction(g->fail, "KK", (unsigned long long)(uintptr_t)err,
                                            (unsigned long long)(uintptr_t)trap);
        Py_XDECREF(r);
        if (r != NULL)
            PyErr_SetString(PyExc_RuntimeError, "guest call failed but fail() returned");
        return NULL;
    }
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
} Host;

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
    for (i = 0; i < h->nparams; i++) {
        if (h->i64_params & (1u << i))
            args[i] = PyLong_FromLongLong((long long)a[i].lo);
        else
            args[i] = PyLong_FromUnsignedLong((unsigned long)(uint32_t)a[i].lo);
        if (args[i] == NULL)
            break;
    }
    PyObject *r = NULL;
    if (i == h->nparams)
        r = PyObject_Vectorcall(h->fn, args, (size_t)h->nparams, NULL);
    for (int j = 0; j < i; j++)
        Py_DECREF(args[j]);
    if (r != NULL) {
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
    if (!PyArg_ParseTuple(args, "O!OiIiO", StoreBase_type, &fs, &fn, &nparams, &i64_params,
                          &result, &soft))
        return -1;
    if (nparams < 0 || nparams > MAX_SLOTS || result < 0 || result > 2) {
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
    return 0;
}

static int Host_traverse(Host *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fs);
    Py_VISIT(self->fn);
    Py_VISIT(self->soft);
    return 0;
}

static int Host_clear(Host *self) {
    Py_CLEAR(self->fs);
    Py_CLEAR(self->fn);
    Py_CLEAR(self->soft);
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
    {Py_tp_doc, "Host(store, fn, nparams, i64_params, result, soft): the env of TRAMPOLINE."},
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

/* read(ptr, size) -> bytes, or None when [ptr, ptr+size) is not inside the memory */
static PyObject *MemoryBase_read(MemoryBase *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "read(ptr, size)");
        return NULL;
    }
    unsigned long long ptr = PyLong_AsUnsignedLongLong(args[0]);
    if (ptr == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    unsigned long long size = PyLong_AsUnsignedLongLong(args[1]);
    if (size == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (MemoryBase_refresh(self) < 0)
        return NULL;
    if (ptr > self->size || size > self->size - ptr)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)self->data + ptr, (Py_ssize_t)size);
}

/* write(ptr, data) -> True, or False when it would not fit inside the memory */
static PyObject *MemoryBase_write(MemoryBase *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "write(ptr, data)");
        return NULL;
    }
    unsigned long long ptr = PyLong_AsUnsignedLongLong(args[0]);
    if (ptr == (unsigned long long)-1 && PyErr_Occurred())
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
    unsigned long long call, trap, msize, mdata;
    if (!PyArg_ParseTuple(args, "KKKK", &call, &trap, &msize, &mdata))
        return NULL;
    if (!call || !trap || !msize || !mdata) {
        PyErr_SetString(PyExc_ValueError, "null wasmtime function address");
        return NULL;
    }
    call_unchecked = (call_fn)(uintptr_t)call;
    trap_new = (trap_new_fn)(uintptr_t)trap;
    mem_size = (mem_size_fn)(uintptr_t)msize;
    mem_data = (mem_data_fn)(uintptr_t)mdata;
    Py_RETURN_NONE;
}

static PyObject *wc_set_release_gil(PyObject *mod, PyObject *arg) {
    int v = PyObject_IsTrue(arg);
    if (v < 0)
        return NULL;
    release_gil = v;
    Py_RETURN_NONE;
}

static PyMethodDef wc_methods[] = {
    {"init", wc_init, METH_VARARGS,
     "init(call, trap_new, memory_data_size, memory_data): addresses of those wasmtime_*"
     " functions in wasmtime-py's library."},
    {"set_release_gil", wc_set_release_gil, METH_O,
     "set_release_gil(flag): whether guest calls release the GIL (default True)."},
    {NULL, NULL, 0, NULL},
};

static int wc_exec(PyObject *m) {
    StoreBase_type = (PyTypeObject *)PyType_FromSpec(&StoreBase_spec);
    if (StoreBase_type == NULL || PyModule_AddObjectRef(m, "StoreBase", (PyObject *)StoreBase_type) < 0)
        return -1;
    PyObject *guest = PyType_FromSpec(&Guest_spec);
    if (guest == NULL || PyModule_AddObject(m, "Guest", guest) < 0)
        return -1;
    PyObject *host = PyType_FromSpec(&Host_spec);
    if (host == NULL || PyModule_AddObject(m, "Host", host) < 0)
        return -1;
    PyObject *memory = PyType_FromSpec(&MemoryBase_spec);
    if (memory == NULL || PyModule_AddObject(m, "MemoryBase", memory) < 0)
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
