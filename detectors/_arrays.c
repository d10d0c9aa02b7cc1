/* C kernels for the small fixed-size arrays of detectors/state.py's
 * AccountState (an optional accelerator; detectors/state.py holds the Python
 * that gives the same results):
 *
 * find(arr, value) -> int      index of the first item == value, else -1
 *                              (arr: array('I'); any int value)
 * argmin(arr) -> int           index of the first smallest item (array('d'))
 * maximum(arr) -> float        the largest item (array('d'))
 *
 * Why C: Detector.process asks these of 8- to 64-item arrays on every event,
 * and the array module answers `x in arr`, `arr.index(x)`, `min(arr)` and
 * `max(arr)` by creating an int or float object per item it compares (about
 * 1 us per event together). Here the items are compared in place.
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

static PyMethodDef methods[] = {
    {"find", (PyCFunction)(void (*)(void))find, METH_FASTCALL,
     "find(arr, value) -> int: index of the first item equal to value, else -1"},
    {"argmin", argmin, METH_O, "argmin(arr) -> int: index of the first smallest item"},
    {"maximum", maximum, METH_O, "maximum(arr) -> float: the largest item"},
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
