/* The C kernels of detectors/text.py's prompt scan (an optional accelerator).
 *
 * scan(data, table, delete, vocab, strong) -> (text, level)
 *
 *   text  == b" ".join(data.translate(table, delete).split())
 *   level == 2 if a word of text is one of vocab[:strong],
 *            1 if a word of text is one of vocab[strong:] (and none of the first),
 *            0 otherwise
 *
 * find_any(text, needles) -> any(needle in text for needle in needles)
 *
 * exactly as the Python branch of detectors.text.scan_window and
 * detectors.text.find_any compute them; the Python stays the reference
 * (tests/test_detectors_core.py compares the two on hostile input). Why C: on
 * a 320-byte window ``split`` creates ~50 bytes objects and the set look-up
 * hashes each of them, and each marker phrase is its own ``in``. Here one
 * pass writes the normalised text and looks each word up as it ends, with no
 * objects created. Built by ``python -m streams.native build`` with the
 * mypyc modules; without it the Python runs, with the same results.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Tables derived from the arguments, kept for the last (table, delete,
 * vocab) seen, with references so the objects' addresses cannot be reused,
 * because callers pass the same module constants every time:
 * - lut: per input byte, the mapped byte, SPACE for whitespace after
 *   mapping, or DROP for a deleted byte;
 * - filter: per first byte, a bit per length (capped at 31) of the
 *   vocabulary words, which rejects almost every word of a text without a
 *   comparison. */
#define DROP 0x100
#define SPACE 0x200
static PyObject *cached_table = NULL, *cached_delete = NULL, *cached_vocab = NULL;
static uint16_t lut[256];
static uint32_t filter[256];
/* the vocabulary grouped by first byte: words bucket_start[c] ..
 * bucket_start[c + 1] - 1 of ``order`` start with byte c (indices into vocab,
 * ascending); a word's end compares only the words of its first byte */
#define MAX_VOCAB 256
static Py_ssize_t bucket_start[257];
static Py_ssize_t order[MAX_VOCAB];
static const char *vocab_ptr[MAX_VOCAB];
static Py_ssize_t vocab_len[MAX_VOCAB];

static int
is_space(unsigned char c)
{
    /* bytes.split() with no separator splits on these (Py_ISSPACE) */
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static void
load_tables(PyObject *table, PyObject *delete, PyObject *vocab)
{
    if (table == cached_table && delete == cached_delete && vocab == cached_vocab) {
        return;
    }
    const unsigned char *map = (const unsigned char *)PyBytes_AS_STRING(table);
    for (int c = 0; c < 256; c++) {
        lut[c] = is_space(map[c]) ? SPACE : map[c];
    }
    const unsigned char *del = (const unsigned char *)PyBytes_AS_STRING(delete);
    for (Py_ssize_t i = 0; i < PyBytes_GET_SIZE(delete); i++) {
        lut[del[i]] = DROP; /* translate deletes before it maps */
    }
    memset(filter, 0, sizeof filter);
    Py_ssize_t nvocab = PyTuple_GET_SIZE(vocab);
    for (Py_ssize_t v = 0; v < nvocab; v++) {
        PyObject *word = PyTuple_GET_ITEM(vocab, v);
        Py_ssize_t wl = PyBytes_GET_SIZE(word);
        if (wl > 0) {
            filter[(unsigned char)PyBytes_AS_STRING(word)[0]] |= 1u << (wl < 31 ? wl : 31);
        }
    }
    /* counting sort of the non-empty words by first byte (an empty word never
     * matches: words found in a text are never empty); scan() refused a
     * vocabulary of more than MAX_VOCAB words */
    Py_ssize_t count[256] = {0};
    for (Py_ssize_t v = 0; v < nvocab; v++) {
        PyObject *word = PyTuple_GET_ITEM(vocab, v);
        vocab_ptr[v] = PyBytes_AS_STRING(word);
        vocab_len[v] = PyBytes_GET_SIZE(word);
        if (vocab_len[v] > 0) {
            count[(unsigned char)vocab_ptr[v][0]]++;
        }
    }
    bucket_start[0] = 0;
    for (int c = 0; c < 256; c++) {
        bucket_start[c + 1] = bucket_start[c] + count[c];
    }
    Py_ssize_t fill[256];
    memcpy(fill, bucket_start, sizeof fill);
    for (Py_ssize_t v = 0; v < nvocab; v++) {
        if (vocab_len[v] > 0) {
            order[fill[(unsigned char)vocab_ptr[v][0]]++] = v;
        }
    }
    Py_INCREF(table);
    Py_INCREF(delete);
    Py_INCREF(vocab);
    Py_XDECREF(cached_table);
    Py_XDECREF(cached_delete);
    Py_XDECREF(cached_vocab);
    cached_table = table;
    cached_delete = delete;
    cached_vocab = vocab;
}

static PyObject *
scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "scan(data, table, delete, vocab, strong)");
        return NULL;
    }
    PyObject *data = args[0], *table = args[1], *delete = args[2], *vocab = args[3];
    if (!PyBytes_CheckExact(data) || !PyBytes_CheckExact(table)
        || !PyBytes_CheckExact(delete) || !PyTuple_CheckExact(vocab)) {
        PyErr_SetString(PyExc_TypeError,
                        "scan: data, table and delete must be bytes, vocab a tuple");
        return NULL;
    }
    if (PyBytes_GET_SIZE(table) != 256) {
        PyErr_SetString(PyExc_ValueError, "scan: table must be 256 bytes long");
        return NULL;
    }
    Py_ssize_t strong = PyLong_AsSsize_t(args[4]);
    if (strong == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t nvocab = PyTuple_GET_SIZE(vocab);
    if (nvocab > MAX_VOCAB) {
        PyErr_Format(PyExc_ValueError, "scan: vocab of at most %d words", MAX_VOCAB);
        return NULL;
    }
    if (vocab != cached_vocab) {
        for (Py_ssize_t v = 0; v < nvocab; v++) {
            if (!PyBytes_CheckExact(PyTuple_GET_ITEM(vocab, v))) {
                PyErr_SetString(PyExc_TypeError, "scan: vocab must hold bytes");
                return NULL;
            }
        }
    }
    load_tables(table, delete, vocab);

    Py_ssize_t n = PyBytes_GET_SIZE(data);
    const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(data);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL) {
        return NULL;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t len = 0, i = 0;
    int level = 0;
    /* One pass: write the normalised text; at each word's end look it up.
     * Two tight loops (separators, then a word's bytes) rather than one
     * branch per byte on what the byte is (13% faster on the simulator's
     * prompts; a branch-free loop was slower still). */
    for (;;) {
        while (i < n && lut[src[i]] >= DROP) { /* separators and deleted bytes */
            i++;
        }
        if (i >= n) {
            break;
        }
        if (len) {
            dst[len++] = ' ';
        }
        Py_ssize_t word = len; /* where this word starts */
        while (i < n) {
            unsigned int c = lut[src[i]];
            if (c < DROP) {
                dst[len++] = (unsigned char)c;
            } else if (c == SPACE) {
                break;
            } /* else DROP: deleted, the word goes on */
            i++;
        }
        Py_ssize_t wl = len - word;
        if (level < 2 && (filter[dst[word]] & (1u << (wl < 31 ? wl : 31)))) {
            for (Py_ssize_t k = bucket_start[dst[word]]; k < bucket_start[dst[word] + 1]; k++) {
                Py_ssize_t v = order[k];
                if (vocab_len[v] == wl && memcmp(vocab_ptr[v], dst + word, (size_t)wl) == 0) {
                    int hit = v < strong ? 2 : 1;
                    if (hit > level) {
                        level = hit;
                    }
                    break;
                }
            }
        }
    }
    if (_PyBytes_Resize(&out, len) < 0) {
        return NULL;
    }
    return Py_BuildValue("(Ni)", out, level);
}

/* find_any(text, needles) -> bool: any(needle in text for needle in needles)
 *
 * One pass over text instead of a memmem per needle (each of those re-reads
 * the text and builds its own skip table: ~100 ns per needle on a 320-byte
 * window). For the last needles tuple seen (callers pass module constants),
 * when every needle is at least 4 bytes long: a bitmap of the hashed first 4
 * bytes of the needles. At each position of the text the 4 bytes there are
 * hashed; only a set bit leads to comparing the needles that start with
 * exactly those 4 bytes. Shorter needles (or more than MAX_NEEDLES) take the
 * memmem loop. */
#define MAX_NEEDLES 64
#define HASH_BITS 12
static PyObject *cached_needles = NULL;
static int needles_fast = 0;
static uint64_t needle_bits[(1u << HASH_BITS) / 64];
static uint32_t needle_prefix[MAX_NEEDLES];

static inline uint32_t
hash4(uint32_t v)
{
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

static void
load_needles(PyObject *needles)
{
    if (needles == cached_needles) {
        return;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(needles);
    needles_fast = count <= MAX_NEEDLES;
    memset(needle_bits, 0, sizeof needle_bits);
    for (Py_ssize_t i = 0; needles_fast && i < count; i++) {
        PyObject *needle = PyTuple_GET_ITEM(needles, i);
        if (PyBytes_GET_SIZE(needle) < 4) {
            needles_fast = 0;
            break;
        }
        uint32_t prefix;
        memcpy(&prefix, PyBytes_AS_STRING(needle), 4);
        needle_prefix[i] = prefix;
        uint32_t h = hash4(prefix);
        needle_bits[h >> 6] |= (uint64_t)1 << (h & 63);
    }
    Py_INCREF(needles);
    Py_XDECREF(cached_needles);
    cached_needles = needles;
}

static PyObject *
find_any(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "find_any(text: bytes, needles: tuple of bytes)");
        return NULL;
    }
    PyObject *needles = args[1];
    Py_ssize_t count = PyTuple_GET_SIZE(needles);
    if (needles != cached_needles) {
        for (Py_ssize_t i = 0; i < count; i++) {
            if (!PyBytes_CheckExact(PyTuple_GET_ITEM(needles, i))) {
                PyErr_SetString(PyExc_TypeError, "find_any: needles must hold bytes");
                return NULL;
            }
        }
        load_needles(needles);
    }
    const char *text = PyBytes_AS_STRING(args[0]);
    size_t n = (size_t)PyBytes_GET_SIZE(args[0]);
    if (!needles_fast) {
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *needle = PyTuple_GET_ITEM(needles, i);
            if (memmem(text, n, PyBytes_AS_STRING(needle), (size_t)PyBytes_GET_SIZE(needle))) {
                Py_RETURN_TRUE;
            }
        }
        Py_RETURN_FALSE;
    }
    for (size_t pos = 0; pos + 4 <= n; pos++) {
        uint32_t v;
        memcpy(&v, text + pos, 4);
        uint32_t h = hash4(v);
        if (!(needle_bits[h >> 6] & ((uint64_t)1 << (h & 63)))) {
            continue;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            if (needle_prefix[i] != v) {
                continue;
            }
            PyObject *needle = PyTuple_GET_ITEM(needles, i);
            size_t len = (size_t)PyBytes_GET_SIZE(needle);
            if (len <= n - pos && memcmp(text + pos, PyBytes_AS_STRING(needle), len) == 0) {
                Py_RETURN_TRUE;
            }
        }
    }
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(data, table, delete, vocab, strong) -> (text, level); see detectors/text.py"},
    {"find_any", (PyCFunction)(void (*)(void))find_any, METH_FASTCALL,
     "find_any(text, needles) -> bool: whether any needle occurs in text"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_textscan",
    "C kernel of detectors.text's window scan (optional; same results as the Python).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__textscan(void)
{
    return PyModule_Create(&module);
}
