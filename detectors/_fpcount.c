/* The C kernel of detectors/cluster.py's shared-template search (an optional
 * accelerator; detectors.cluster.shared_fingerprints holds the Python that
 * gives the same results):
 *
 * shared(seqs, need) -> list[int] | None
 *
 *   the distinct values carried at least ``need`` times over all of ``seqs``
 *   (a list of tuples of unsigned 64-bit ints: the members' prompt
 *   fingerprints), in first-seen order; every occurrence counts. None when
 *   an item is not a tuple or a value not an unsigned 64-bit int: the caller
 *   then counts in Python, which takes anything hashable.
 *
 * Why C: a cluster is scored on every summary that touches it, and finding
 * the fingerprints its members share built a set of up to ~256 int objects
 * and then a Counter of them (a Python class): about half of the cluster
 * stage. Here the values are counted in a small open-addressing table,
 * without creating objects unless a value is shared.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STACK_SLOTS 1024

typedef struct {
    uint64_t key;
    uint32_t count; /* 0: empty slot */
    uint32_t first; /* order of first sight, for a deterministic result */
} slot_t;

static int
by_first(const void *a, const void *b)
{
    uint32_t x = ((const slot_t *)a)->first, y = ((const slot_t *)b)->first;
    return (x > y) - (x < y);
}

static PyObject *
shared(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "shared(seqs: list of tuples of int, need: int)");
        return NULL;
    }
    PyObject *seqs = args[0];
    long long need = PyLong_AsLongLong(args[1]);
    if (need == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t nseqs = PyList_GET_SIZE(seqs), total = 0;
    for (Py_ssize_t i = 0; i < nseqs; i++) {
        PyObject *seq = PyList_GET_ITEM(seqs, i);
        if (!PyTuple_CheckExact(seq)) {
            Py_RETURN_NONE;
        }
        total += PyTuple_GET_SIZE(seq);
    }
    /* a power of two at least twice the values: short probe chains */
    size_t size = 16;
    while (size < (size_t)total * 2) {
        size <<= 1;
    }
    slot_t stack[STACK_SLOTS];
    slot_t *table = size <= STACK_SLOTS ? stack : PyMem_Malloc(size * sizeof(slot_t));
    if (table == NULL) {
        return PyErr_NoMemory();
    }
    memset(table, 0, size * sizeof(slot_t));
    const int shift = 64 - __builtin_ctzll((unsigned long long)size);
    uint32_t seen = 0;
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < nseqs; i++) {
        PyObject *seq = PyList_GET_ITEM(seqs, i);
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(seq); j++) {
            PyObject *item = PyTuple_GET_ITEM(seq, j);
            unsigned long long v = PyLong_Check(item) ? PyLong_AsUnsignedLongLong(item)
                                                      : (unsigned long long)-1;
            if (v == (unsigned long long)-1 && (!PyLong_Check(item) || PyErr_Occurred())) {
                PyErr_Clear(); /* not an int, negative or over 64 bits */
                result = Py_NewRef(Py_None);
                goto done;
            }
            size_t h = (size_t)((v * 0x9E3779B97F4A7C15ull) >> shift);
            while (table[h].count && table[h].key != v) {
                h = (h + 1) & (size - 1);
            }
            if (!table[h].count) {
                table[h].key = v;
                table[h].first = seen++;
            }
            table[h].count++;
        }
    }
    /* the shared values, in first-seen order (there are few: usually none) */
    size_t nshared = 0;
    for (size_t h = 0; h < size; h++) {
        if (table[h].count && (long long)table[h].count >= need) {
            table[nshared++] = table[h]; /* compacts in place: nshared <= h */
        }
    }
    qsort(table, nshared, sizeof(slot_t), by_first);
    result = PyList_New((Py_ssize_t)nshared);
    if (result == NULL) {
        goto done;
    }
    for (size_t k = 0; k < nshared; k++) {
        PyObject *value = PyLong_FromUnsignedLongLong(table[k].key);
        if (value == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, (Py_ssize_t)k, value);
    }
done:
    if (table != stack) {
        PyMem_Free(table);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"shared", (PyCFunction)(void (*)(void))shared, METH_FASTCALL,
     "shared(seqs, need) -> list[int] | None: the values carried at least need times"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fpcount",
    "C kernel of detectors.cluster's shared-template search (optional; same results as "
    "its Python).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__fpcount(void)
{
    return PyModule_Create(&module);
}
