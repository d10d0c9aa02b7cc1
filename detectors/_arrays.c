/* C kernels for the small fixed-size arrays of detectors/state.py's
 * AccountState (an optional accelerator; detectors/state.py holds the Python
 * that gives the same results):
 *
 * find(arr, value) -> int      index of the first item == value, else -1
 *                              (arr: array('I'); any int value)
 * argmin(arr) -> int           index of the first smallest item (array('d'))
 * maximum(arr) -> float        the largest item (array('d'))
 * best_agreement(ring, sk) -> int
 *                              the most bins (of 16) that the sketch sk (four
 *                              ints) shares with a prompt of the template
 *                              ring (array('I'), four words a prompt; a slot
 *                              whose first word is 0 is empty), as
 *                              detectors.text.agreement over the slots
 *
 * Why C: Detector.process asks these of 8- to 64-item arrays on every event,
 * and the array module answers `x in arr`, `arr.index(x)`, `min(arr)` and
 * `max(arr)` by creating an int or float object per item it compares (about
 * 1 us per event together). Here the items are compared in place.
 * best_agreement replaces 8 compiled calls of agreement() a prompt, each of
 * which boxed the four ring words it read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The buffer of arr when it is an array of the given typecode. */
static int
get_items(PyObject *arr, char typecode, Py_ssize_t itemsize, Py_buffer *view, const char *fn)
{
    if (PyObject_GetBuffer(arr, view, PyBUF_FORMAT) < 0) {
        return -1;
    }
    if (view->itemsize != itemsize || view->format == NULL || view->format[0] != typecode
        || view->format[1] != '\0') {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s: expected array('%c')", fn, typecode);
        return -1;
    }
    return 0;
}

static PyObject *
find(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "find(arr: array('I'), value: int)");
        return NULL;
    }
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (value == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (get_items(args[0], 'I', sizeof(unsigned int), &view, "find") < 0) {
        return NULL;
    }
    Py_ssize_t found = -1;
    /* a value no unsigned int can hold is in no array('I') */
    if (!overflow && value >= 0 && (unsigned long long)value <= UINT_MAX) {
        const unsigned int *items = (const unsigned int *)view.buf;
        const unsigned int v = (unsigned int)value;
        const Py_ssize_t n = view.len / view.itemsize;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (items[i] == v) {
                found = i;
                break;
            }
        }
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(found);
}

static PyObject *
argmin(PyObject *self, PyObject *arr)
{
    (void)self;
    Py_buffer view;
    if (get_items(arr, 'd', sizeof(double), &view, "argmin") < 0) {
        return NULL;
    }
    const double *items = (const double *)view.buf;
    const Py_ssize_t n = view.len / view.itemsize;
    Py_ssize_t best = 0;
    /* strict <: the first of equal smallest items, as arr.index(min(arr)) */
    for (Py_ssize_t i = 1; i < n; i++) {
        if (items[i] < items[best]) {
            best = i;
        }
    }
    PyBuffer_Release(&view);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "argmin() arg is an empty array");
        return NULL;
    }
    return PyLong_FromSsize_t(best);
}

static PyObject *
maximum(PyObject *self, PyObject *arr)
{
    (void)self;
    Py_buffer view;
    if (get_items(arr, 'd', sizeof(double), &view, "maximum") < 0) {
        return NULL;
    }
    const double *items = (const double *)view.buf;
    const Py_ssize_t n = view.len / view.itemsize;
    double best = n ? items[0] : 0.0;
    for (Py_ssize_t i = 1; i < n; i++) {
        if (items[i] > best) {
            best = items[i];
        }
    }
    PyBuffer_Release(&view);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "maximum() arg is an empty array");
        return NULL;
    }
    return PyFloat_FromDouble(best);
}

/* Bytes (of the low four) in which two words differ. */
static inline int
differing_bytes(uint32_t x)
{
    return ((x & 0xFFu) != 0) + ((x & 0xFF00u) != 0) + ((x & 0xFF0000u) != 0)
           + ((x & 0xFF000000u) != 0);
}

static PyObject *
best_agreement(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "best_agreement(ring: array('I'), sketch: tuple of 4 ints)");
        return NULL;
    }
    uint32_t sk[4];
    for (int k = 0; k < 4; k++) {
        PyObject *w = PyTuple_GET_ITEM(args[1], k);
        if (!PyLong_Check(w)) {
            PyErr_SetString(PyExc_TypeError, "best_agreement: sketch words must be ints");
            return NULL;
        }
        /* agreement() reads the low 32 bits of each word (two's complement) */
        unsigned long long v = PyLong_AsUnsignedLongLongMask(w);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            return NULL;
        }
        sk[k] = (uint32_t)v;
    }
    Py_buffer view;
    if (get_items(args[0], 'I', sizeof(unsigned int), &view, "best_agreement") < 0) {
        return NULL;
    }
    const unsigned int *ring = (const unsigned int *)view.buf;
    const Py_ssize_t n = view.len / view.itemsize;
    long best = 0;
    /* slots of four words, as range(0, len(ring), 4); a short last slot
     * (never in AccountState) is read as the Python would: an IndexError */
    for (Py_ssize_t i = 0; i < n; i += 4) {
        if (!ring[i]) {
            continue;
        }
        if (i + 3 >= n) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_IndexError, "array index out of range");
            return NULL;
        }
        long a = 16 - differing_bytes((uint32_t)ring[i] ^ sk[0])
                 - differing_bytes((uint32_t)ring[i + 1] ^ sk[1])
                 - differing_bytes((uint32_t)ring[i + 2] ^ sk[2])
                 - differing_bytes((uint32_t)ring[i + 3] ^ sk[3]);
        if (a > best) {
            best = a;
        }
    }
    PyBuffer_Release(&view);
    return PyLong_FromLong(best);
}

static PyMethodDef methods[] = {
    {"find", (PyCFunction)(void (*)(void))find, METH_FASTCALL,
     "find(arr, value) -> int: index of the first item equal to value, else -1"},
    {"argmin", argmin, METH_O, "argmin(arr) -> int: index of the first smallest item"},
    {"maximum", maximum, METH_O, "maximum(arr) -> float: the largest item"},
    {"best_agreement", (PyCFunction)(void (*)(void))best_agreement, METH_FASTCALL,
     "best_agreement(ring, sketch) -> int: the most bins sketch shares with a ring slot"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_arrays",
    "C kernels for AccountState's arrays (optional; same results as detectors.state's Python).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__arrays(void)
{
    return PyModule_Create(&module);
}
