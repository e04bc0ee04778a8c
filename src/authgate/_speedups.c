/* The C twin of authgate._hitpath.PyHitPath: the ASGI cache-hit path.
 *
 * HitPath(entries, clock, exclude_paths)(scope) -> Principal | None
 *
 * Finds the principal cached under the request's exact Authorization value when the scope
 * is an HTTP or WebSocket scope on a path that is not excluded, its headers are a list of
 * (bytes, bytes) pairs with exactly one "authorization" and no "x-api-key", the value starts
 * with "Bearer ", and clock() < the entry's deadline; attaches it (scope["user"],
 * scope["auth"], scope["state"]["principal"]) and returns it. Anything else returns None with
 * the scope untouched, and the Python middleware's full path decides. PyHitPath is the
 * specification: the tests run both.
 *
 * When the clock is time.time itself, CLOCK_REALTIME is read here directly: the same clock,
 * converted to seconds exactly as time.time converts it, without the call machinery.
 *
 * Safety: every object kept across a call that may run Python code (the clock, a rich
 * comparison, a non-dict state's __setitem__) is held by a strong reference, so another
 * thread evicting the entry meanwhile cannot free it under us. The cache is never written.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static PyObject *str_type, *str_http, *str_websocket, *str_path, *str_headers;
static PyObject *str_user, *str_auth, *str_state, *str_principal;
static PyObject *time_time; /* the time.time builtin, to recognise it as the clock */

typedef struct {
    PyObject_HEAD
    PyObject *entries;  /* dict: bytes -> (deadline, principal) */
    PyObject *clock;    /* callable returning the time */
    PyObject *exclude;  /* frozenset of str */
    int realtime;       /* the clock is time.time */
    vectorcallfunc vectorcall;
} HitPathObject;

/* A new reference to d[key], or NULL with no exception when absent (or on error, with one). */
static PyObject *
dict_get_ref(PyObject *d, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(d, key);
    Py_XINCREF(value);
    return value;
}

static int
name_is(PyObject *name, const char *literal, Py_ssize_t size)
{
    return PyBytes_GET_SIZE(name) == size && memcmp(PyBytes_AS_STRING(name), literal, size) == 0;
}

/* 1 when scope["type"] is "http" or "websocket", 0 when not, -1 on error. */
static int
is_http_or_websocket(PyObject *scope)
{
    PyObject *kind = dict_get_ref(scope, str_type);
    if (kind == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    int found = 0;
    if (PyUnicode_CheckExact(kind)) {
        found = kind == str_http || kind == str_websocket
                || PyUnicode_Compare(kind, str_http) == 0
                || PyUnicode_Compare(kind, str_websocket) == 0;
    }
    Py_DECREF(kind);
    return found;
}

/* 1 when scope["path"] is an excluded path (or is not a str), 0 when not, -1 on error. */
static int
is_excluded(HitPathObject *self, PyObject *scope)
{
    if (PySet_GET_SIZE(self->exclude) == 0) {
        return 0;
    }
    PyObject *path = dict_get_ref(scope, str_path);
    if (path == NULL) {
        return PyErr_Occurred() ? -1 : 1;
    }
    int excluded = 1;
    if (PyUnicode_CheckExact(path)) {
        excluded = PySet_Contains(self->exclude, path);
    }
    Py_DECREF(path);
    return excluded;
}

/* A new reference to the one Authorization value, or NULL (no exception) for the full path.
 * Runs no Python code: the items are exact tuples or lists, and the names exact bytes. */
static PyObject *
sole_authorization(PyObject *headers)
{
    PyObject *found = NULL;
    Py_ssize_t n = PyList_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        PyObject *name, *value;
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
            name = PyTuple_GET_ITEM(item, 0);
            value = PyTuple_GET_ITEM(item, 1);
        }
        else if (PyList_CheckExact(item) && PyList_GET_SIZE(item) == 2) {
            name = PyList_GET_ITEM(item, 0);
            value = PyList_GET_ITEM(item, 1);
        }
        else {
            return NULL;
        }
        if (!PyBytes_CheckExact(name)) {
            return NULL;
        }
        if (name_is(name, "authorization", 13)) {
            if (found != NULL) {
                return NULL;
            }
            found = value;
        }
        else if (name_is(name, "x-api-key", 9)) {
            return NULL;
        }
    }
    /* API keys are cached as b"x-api-key:<key>": only Bearer values are looked up raw. */
    if (found == NULL || !PyBytes_CheckExact(found) || PyBytes_GET_SIZE(found) < 7
        || memcmp(PyBytes_AS_STRING(found), "Bearer ", 7) != 0) {
        return NULL;
    }
    Py_INCREF(found);
    return found;
}

/* 1 when the cache's clock reads before deadline, 0 when not, -1 with an exception.
 * The caller holds a strong reference to deadline: the clock may run Python code. */
static int
clock_before(HitPathObject *self, PyObject *deadline)
{
#if defined(CLOCK_REALTIME) && !defined(_WIN32)
    struct timespec ts;
    if (self->realtime && PyFloat_CheckExact(deadline) && clock_gettime(CLOCK_REALTIME, &ts) == 0) {
        /* as time.time converts it: integer nanoseconds, then one division */
        int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        return (double)ns / 1e9 < PyFloat_AS_DOUBLE(deadline);
    }
#endif
    PyObject *now = PyObject_CallNoArgs(self->clock);
    if (now == NULL) {
        return -1;
    }
    int before = PyFloat_CheckExact(now) && PyFloat_CheckExact(deadline)
                     ? PyFloat_AS_DOUBLE(now) < PyFloat_AS_DOUBLE(deadline)
                     : PyObject_RichCompareBool(now, deadline, Py_LT);
    Py_DECREF(now);
    return before;
}

/* scope["user"] = scope["auth"] = principal; scope["state"]["principal"] = principal.
 * A missing or None state becomes a new dict. 0 on success, -1 with an exception. */
static int
attach(PyObject *scope, PyObject *principal)
{
    if (PyDict_SetItem(scope, str_user, principal) < 0
        || PyDict_SetItem(scope, str_auth, principal) < 0) {
        return -1;
    }
    PyObject *state = dict_get_ref(scope, str_state);
    if (state == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (state == NULL || state == Py_None) {
        Py_XDECREF(state);
        state = PyDict_New();
        if (state == NULL) {
            return -1;
        }
        if (PyDict_SetItem(scope, str_state, state) < 0) {
            Py_DECREF(state);
            return -1;
        }
    }
    int status = PyDict_CheckExact(state) ? PyDict_SetItem(state, str_principal, principal)
                                          : PyObject_SetItem(state, str_principal, principal);
    Py_DECREF(state);
    return status;
}

static PyObject *
hitpath_lookup(HitPathObject *self, PyObject *scope)
{
    if (!PyDict_CheckExact(scope)) {
        Py_RETURN_NONE;
    }
    int ok = is_http_or_websocket(scope);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_None);
    }
    int excluded = is_excluded(self, scope);
    if (excluded != 0) {
        return excluded < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *headers = dict_get_ref(scope, str_headers);
    if (headers == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    PyObject *authorization = PyList_CheckExact(headers) ? sole_authorization(headers) : NULL;
    Py_DECREF(headers);
    if (authorization == NULL) {
        Py_RETURN_NONE;
    }
    /* bytes keys hash and compare without running Python code */
    PyObject *entry = dict_get_ref(self->entries, authorization);
    Py_DECREF(authorization);
    if (entry == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    PyObject *result = NULL;
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    int fresh = clock_before(self, PyTuple_GET_ITEM(entry, 0));
    if (fresh == 0) {
        result = Py_NewRef(Py_None);
    }
    else if (fresh > 0) {
        result = Py_NewRef(PyTuple_GET_ITEM(entry, 1));
        if (attach(scope, result) < 0) {
            Py_CLEAR(result);
        }
    }
done:
    Py_DECREF(entry);
    return result;
}

static PyObject *
hitpath_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "HitPath takes one positional argument: the scope");
        return NULL;
    }
    return hitpath_lookup((HitPathObject *)op, args[0]);
}

static PyObject *
hitpath_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"entries", "clock", "exclude_paths", NULL};
    PyObject *entries, *clock, *exclude;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OO!:HitPath", names, &PyDict_Type,
                                     &entries, &clock, &PyFrozenSet_Type, &exclude)) {
        return NULL;
    }
    if (!PyCallable_Check(clock)) {
        PyErr_SetString(PyExc_TypeError, "HitPath: clock must be callable");
        return NULL;
    }
    HitPathObject *self = (HitPathObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->entries = Py_NewRef(entries);
    self->clock = Py_NewRef(clock);
    self->exclude = Py_NewRef(exclude);
    self->realtime = clock == time_time;
    self->vectorcall = hitpath_vectorcall;
    return (PyObject *)self;
}

static int
hitpath_traverse(HitPathObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->entries);
    Py_VISIT(self->clock);
    Py_VISIT(self->exclude);
    return 0;
}

static int
hitpath_clear(HitPathObject *self)
{
    Py_CLEAR(self->entries);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->exclude);
    return 0;
}

static void
hitpath_dealloc(HitPathObject *self)
{
    PyObject_GC_UnTrack(self);
    hitpath_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
hitpath_repr(HitPathObject *self)
{
    return PyUnicode_FromFormat("HitPath(%zd entries)", PyDict_GET_SIZE(self->entries));
}

static PyTypeObject HitPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "authgate._speedups.HitPath",
    .tp_doc = PyDoc_STR("HitPath(entries, clock, exclude_paths)(scope) -> Principal | None\n\n"
                        "The C twin of authgate._hitpath.PyHitPath."),
    .tp_basicsize = sizeof(HitPathObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = hitpath_new,
    .tp_dealloc = (destructor)hitpath_dealloc,
    .tp_traverse = (traverseproc)hitpath_traverse,
    .tp_clear = (inquiry)hitpath_clear,
    .tp_repr = (reprfunc)hitpath_repr,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(HitPathObject, vectorcall),
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "authgate._speedups",
    .m_doc = "C twins of authgate's hot paths (see authgate._hitpath).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&HitPathType) < 0) {
        return NULL;
    }
    static struct {
        PyObject **slot;
        const char *text;
    } interned[] = {
        {&str_type, "type"}, {&str_http, "http"}, {&str_websocket, "websocket"},
        {&str_path, "path"}, {&str_headers, "headers"}, {&str_user, "user"},
        {&str_auth, "auth"}, {&str_state, "state"}, {&str_principal, "principal"},
    };
    for (size_t i = 0; i < sizeof(interned) / sizeof(interned[0]); i++) {
        *interned[i].slot = PyUnicode_InternFromString(interned[i].text);
        if (*interned[i].slot == NULL) {
            return NULL;
        }
    }
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL) {
        return NULL;
    }
    time_time = PyObject_GetAttrString(time_module, "time");
    Py_DECREF(time_module);
    if (time_time == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&HitPathType);
    if (PyModule_AddObject(module, "HitPath", (PyObject *)&HitPathType) < 0) {
        Py_DECREF(&HitPathType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
