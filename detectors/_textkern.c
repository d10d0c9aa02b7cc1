/* The C kernel of detectors/text.py's prompt features (an optional
 * accelerator; detectors.text.prompt_features holds the Python that gives the
 * same results, and tests/test_textkern.py compares the two):
 *
 * configure(ranges, idioms, entries, markers, stop, strip_char, strip_word)
 *     the tables, from detectors/text.py (one source for every list):
 *     ranges    [(lo, hi)] code points of the scripts without spaces
 *     idioms    [str] a substring that alone makes a request elicitation
 *     entries   [(str, class bit)] concept word prefixes (marks stripped)
 *     markers   [(str, class bit)] concept substrings of scripts without spaces
 *     stop      [bytes] UTF-8 stop words of the topic terms
 *     strip_char(ch) -> str | None   one character without its accents, or
 *               None when a word holding it is stripped whole by
 *     strip_word(word) -> str        (text._strip_marks)
 *     norm_char(ch) -> str | None    text.normalize of one character, or
 *               None when the piece of text around it (between the
 *               normalisation boundaries before and after it) is
 *               normalised by
 *     norm_text(text) -> str         (NFKC + casefold, text._nfkc_casefold)
 *     Class bits: 1 reasoning, 2 reveal, 4 grading, 8 graded thing.
 *
 * features(text) -> (sketch, size, elicit, terms, anchor)
 *     prompt_features of an already normalised text (text.normalize).
 * features_raw(text) -> the same of text.normalize(text), for a prompt
 *     already cut to its scanned part: ASCII lowered in place, other text
 *     normalised per character from a table (norm_char) when it can be.
 *
 * Why C: the Python does per prompt a regular-expression split, an encode per
 * unit, a bytes join and a crc32 call per shingle, a set and a sort of int
 * objects, a set of words with a strip_marks call each and prefix look-ups:
 * ~110 us per prompt of the realistic workload, nearly all of the account
 * stage. Here one pass over the code points makes the UTF-8 text and the
 * units, the shingles are CRC-32s of byte ranges (not sorted: the sketch,
 * anchor and count need only minima and a distinct count), and the concept
 * scan is a hashed prefix table; no object per unit or shingle.
 *
 * Units follow the Python's regular expression exactly: a character of a
 * script without spaces alone, else a run of characters that are alphanumeric
 * (str.isalnum) and not decimal digits (the `[^\W\d_]` class of `re` on str).
 * CRC-32 is zlib's (reflected 0xEDB88320).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SKETCH_BINS 16
#define ANCHORS 3
#define TOPIC_TERMS 12
#define TOPIC_UNITS 48
#define MAX_RANGES 64
#define PAT_BITS 16 /* bitmap of hashed 4-byte pattern heads */
#define ENTRY_BUCKETS 1024
#define STOP_BUCKETS 1024
#define MAPPED_SLOTS 4096
#define NORM_SLOTS 16384

/* ----------------------------------------------------------------- crc32 */
static uint32_t crc_table[8][256];

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t c = crc_table[t - 1][i];
            crc_table[t][i] = (c >> 8) ^ crc_table[0][c & 0xFF];
        }
    }
}

/* ASCII lower case of a byte (other bytes as they are) */
static uint8_t ascii_lower[256];

static void
lower_init(void)
{
    for (int b = 0; b < 256; b++) {
        ascii_lower[b] = (uint8_t)(b >= 'A' && b <= 'Z' ? b | 0x20 : b);
    }
}

/* zlib.crc32(data, value); inlined into the shingle and topic loops (the
 * call itself was a sixth of its instructions: most ranges are short) */
static inline __attribute__((always_inline)) uint32_t
crc_raw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF]
            ^ crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24]
            ^ crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF]
            ^ crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    if (n >= 4) { /* slicing by 4: most units are short */
        uint32_t lo;
        memcpy(&lo, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
#endif
        lo ^= c;
        c = crc_table[3][lo & 0xFF] ^ crc_table[2][(lo >> 8) & 0xFF]
            ^ crc_table[1][(lo >> 16) & 0xFF] ^ crc_table[0][lo >> 24];
        p += 4;
        n -= 4;
    }
    /* the last 1-3 bytes in one step each (slicing, as above) */
    switch (n) {
    case 3:
        c = crc_table[2][(c ^ p[0]) & 0xFF] ^ crc_table[1][((c >> 8) ^ p[1]) & 0xFF]
            ^ crc_table[0][((c >> 16) ^ p[2]) & 0xFF] ^ (c >> 24);
        break;
    case 2:
        c = crc_table[1][(c ^ p[0]) & 0xFF] ^ crc_table[0][((c >> 8) ^ p[1]) & 0xFF] ^ (c >> 16);
        break;
    case 1:
        c = crc_table[0][(c ^ p[0]) & 0xFF] ^ (c >> 8);
        break;
    default:
        break;
    }
    return c;
}

/* crc_raw works on the register (zlib's value inverted), so that a shingle
 * of two ranges and a space chains without the inversions */
static inline __attribute__((always_inline)) uint32_t
crc32_inline(uint32_t value, const uint8_t *p, size_t n)
{
    return ~crc_raw(~value, p, n);
}

static uint32_t
crc32_update(uint32_t value, const uint8_t *p, size_t n)
{
    return crc32_inline(value, p, n);
}

/* ---------------------------------------------------------------- tables */
typedef struct {
    uint8_t *bytes;
    Py_ssize_t len;
    int cls; /* class bits; 0x10: an idiom */
    int next; /* next pattern/entry in the same bucket, -1 at the end */
} pat_t;

#define IDIOM 0x10

static struct {
    int configured;
    int nranges;
    Py_UCS4 lo[MAX_RANGES], hi[MAX_RANGES];
    /* substring patterns: idioms and markers */
    pat_t *pats;
    int npats;
    /* every 4-byte gram of every pattern, by its hash: the text is read at
     * every pat_stride-th byte only (below) */
    struct {
        int pat, off, next;
    } *grams;
    int pat_stride;
    uint8_t pat_bitmap[(1 << PAT_BITS) / 8];
    int pat_head[1 << PAT_BITS];
    /* concept entries by their first 3 bytes */
    pat_t *entries;
    int nentries;
    int entry_head[ENTRY_BUCKETS];
    /* stop words by crc32 */
    pat_t *stops;
    int nstops;
    int stop_head[STOP_BUCKETS];
    PyObject *strip_char, *strip_word, *norm_char, *norm_text;
    /* normalisation per code point: 0 unknown, 1 itself, 2 the text goes
     * through norm_text (its piece), 3 mapped (norm_map) */
    uint8_t *norm_state;
    /* the unit class of each BMP code point: 0 separator, 1 in a word,
     * 2 a unit alone (a script without spaces) */
    uint8_t bmp_class[0x10000];
    uint16_t *norm_ccc; /* combining classes of its decomposition's ends: first << 8 | last */
    struct {
        Py_UCS4 cp; /* 0: empty */
        uint32_t at, len; /* in norm_pool */
    } norm_map[NORM_SLOTS];
    int nnorm;
    Py_UCS4 *norm_pool;
    size_t pool_len, pool_cap;
    /* per code point: 0 unknown, 1 itself, 2 word goes whole, 3 mapped */
    uint8_t *cp_state;
    struct {
        Py_UCS4 cp; /* 0: empty */
        uint8_t len;
        uint8_t bytes[16];
    } mapped[MAPPED_SLOTS];
    int nmapped;
} T;

static void
free_pats(pat_t *p, int n)
{
    if (p == NULL) {
        return;
    }
    for (int i = 0; i < n; i++) {
        PyMem_Free(p[i].bytes);
    }
    PyMem_Free(p);
}

static void
clear_tables(void)
{
    free_pats(T.pats, T.npats);
    free_pats(T.entries, T.nentries);
    free_pats(T.stops, T.nstops);
    T.pats = T.entries = T.stops = NULL;
    T.npats = T.nentries = T.nstops = 0;
    PyMem_Free(T.grams);
    T.grams = NULL;
    Py_CLEAR(T.strip_char);
    Py_CLEAR(T.strip_word);
    Py_CLEAR(T.norm_char);
    Py_CLEAR(T.norm_text);
    PyMem_Free(T.cp_state);
    T.cp_state = NULL;
    PyMem_Free(T.norm_state);
    T.norm_state = NULL;
    PyMem_Free(T.norm_ccc);
    T.norm_ccc = NULL;
    PyMem_Free(T.norm_pool);
    T.norm_pool = NULL;
    T.pool_len = T.pool_cap = 0;
    memset(T.norm_map, 0, sizeof(T.norm_map));
    T.nnorm = 0;
    memset(T.mapped, 0, sizeof(T.mapped));
    T.nmapped = 0;
    T.configured = 0;
}

static inline uint32_t
head_hash(const uint8_t *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return (x * 0x9E3779B1u) >> (32 - PAT_BITS);
}

static inline uint32_t
entry_hash(const uint8_t *p)
{
    return ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16) * 0x9E3779B1u
           >> (32 - 10);
}

/* UTF-8 of one code point, surrogates as three bytes ("surrogatepass") */
static inline int
put_utf8(uint8_t *out, Py_UCS4 c)
{
    if (c < 0x80) {
        out[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (uint8_t)(0xC0 | (c >> 6));
        out[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (c >> 12));
        out[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (c >> 18));
    out[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

/* UTF-8 (surrogatepass) of a str into a new PyMem buffer */
static uint8_t *
str_utf8(PyObject *s, Py_ssize_t *len)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    uint8_t *buf = PyMem_Malloc((size_t)n * 4 + 1);
    if (buf == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        at += put_utf8(buf + at, PyUnicode_READ(kind, data, i));
    }
    *len = at;
    return buf;
}

/* a list of str or (str, int) or bytes into pat_t; min_len: least bytes */
static pat_t *
read_pats(PyObject *list, int with_class, int as_bytes, Py_ssize_t min_len, int *count)
{
    if (!PyList_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "configure: expected lists");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(list);
    pat_t *out = PyMem_Calloc((size_t)n + 1, sizeof(pat_t));
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i), *s = item;
        int cls = 0;
        if (with_class) {
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2
                || !PyLong_Check(PyTuple_GET_ITEM(item, 1))) {
                PyErr_SetString(PyExc_TypeError, "configure: expected (str, int) items");
                goto fail;
            }
            s = PyTuple_GET_ITEM(item, 0);
            cls = (int)PyLong_AsLong(PyTuple_GET_ITEM(item, 1));
        }
        if (as_bytes) {
            if (!PyBytes_Check(s)) {
                PyErr_SetString(PyExc_TypeError, "configure: expected bytes");
                goto fail;
            }
            out[i].len = PyBytes_GET_SIZE(s);
            out[i].bytes = PyMem_Malloc((size_t)out[i].len + 1);
            if (out[i].bytes == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            memcpy(out[i].bytes, PyBytes_AS_STRING(s), (size_t)out[i].len);
        }
        else {
            if (!PyUnicode_Check(s)) {
                PyErr_SetString(PyExc_TypeError, "configure: expected str");
                goto fail;
            }
            out[i].bytes = str_utf8(s, &out[i].len);
            if (out[i].bytes == NULL) {
                goto fail;
            }
        }
        if (out[i].len < min_len) {
            PyErr_Format(PyExc_ValueError, "configure: a pattern shorter than %zd bytes",
                         min_len);
            goto fail;
        }
        out[i].cls = cls;
        out[i].next = -1;
    }
    *count = (int)n;
    return out;
fail:
    free_pats(out, (int)n);
    return NULL;
}

static void fill_bmp_class(void);

static PyObject *
configure(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 9 || !PyList_Check(args[0]) || !PyCallable_Check(args[5])
        || !PyCallable_Check(args[6]) || !PyCallable_Check(args[7])
        || !PyCallable_Check(args[8])) {
        PyErr_SetString(PyExc_TypeError,
                        "configure(ranges, idioms, entries, markers, stop, strip_char, "
                        "strip_word, norm_char, norm_text)");
        return NULL;
    }
    clear_tables();
    PyObject *ranges = args[0];
    if (PyList_GET_SIZE(ranges) > MAX_RANGES) {
        PyErr_SetString(PyExc_ValueError, "configure: too many ranges");
        return NULL;
    }
    T.nranges = (int)PyList_GET_SIZE(ranges);
    for (int i = 0; i < T.nranges; i++) {
        unsigned long lo, hi;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(ranges, i), "kk", &lo, &hi)) {
            return NULL;
        }
        if (lo < 0x80 || hi > 0x10FFFF || lo > hi) {
            PyErr_SetString(PyExc_ValueError, "configure: ranges must be non-ASCII code points");
            return NULL;
        }
        T.lo[i] = (Py_UCS4)lo;
        T.hi[i] = (Py_UCS4)hi;
    }
    /* idioms and markers in one table: both are substrings of the text */
    int nidioms = 0, nmarkers = 0;
    pat_t *idioms = read_pats(args[1], 0, 0, 4, &nidioms);
    if (idioms == NULL) {
        return NULL;
    }
    pat_t *markers = read_pats(args[3], 1, 0, 4, &nmarkers);
    if (markers == NULL) {
        free_pats(idioms, nidioms);
        return NULL;
    }
    T.pats = PyMem_Calloc((size_t)(nidioms + nmarkers) + 1, sizeof(pat_t));
    if (T.pats == NULL) {
        free_pats(idioms, nidioms);
        free_pats(markers, nmarkers);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < nidioms; i++) {
        T.pats[T.npats] = idioms[i];
        T.pats[T.npats++].cls = IDIOM;
    }
    for (int i = 0; i < nmarkers; i++) {
        T.pats[T.npats++] = markers[i];
    }
    PyMem_Free(idioms); /* the strings moved to T.pats */
    PyMem_Free(markers);
    memset(T.pat_bitmap, 0, sizeof(T.pat_bitmap));
    for (int i = 0; i < (1 << PAT_BITS); i++) {
        T.pat_head[i] = -1;
    }
    /* A pattern of L >= shortest bytes holds the 4-byte grams that start at
     * its first L - 3 bytes; L - 3 >= shortest - 3 = stride consecutive
     * positions hold a multiple of the stride. So reading the text's grams
     * at the multiples of the stride only, and each pattern under every one
     * of its grams, finds every occurrence of every pattern (the scan read
     * every byte: about 8% of replay's instructions) */
    size_t ngrams = 0;
    Py_ssize_t shortest = 4;
    for (int i = 0; i < T.npats; i++) {
        ngrams += (size_t)(T.pats[i].len - 3);
        shortest = i == 0 || T.pats[i].len < shortest ? T.pats[i].len : shortest;
    }
    T.pat_stride = (int)(shortest - 3);
    T.grams = PyMem_Calloc(ngrams + 1, sizeof(*T.grams));
    if (T.grams == NULL) {
        clear_tables();
        return PyErr_NoMemory();
    }
    int g = 0;
    for (int i = 0; i < T.npats; i++) {
        for (Py_ssize_t off = 0; off + 4 <= T.pats[i].len; off++) {
            uint32_t h = head_hash(T.pats[i].bytes + off);
            T.pat_bitmap[h >> 3] |= (uint8_t)(1 << (h & 7));
            T.grams[g].pat = i;
            T.grams[g].off = (int)off;
            T.grams[g].next = T.pat_head[h];
            T.pat_head[h] = g++;
        }
    }
    T.entries = read_pats(args[2], 1, 0, 3, &T.nentries);
    if (T.entries == NULL) {
        clear_tables();
        return NULL;
    }
    for (int i = 0; i < ENTRY_BUCKETS; i++) {
        T.entry_head[i] = -1;
    }
    for (int i = T.nentries - 1; i >= 0; i--) {
        uint32_t h = entry_hash(T.entries[i].bytes);
        T.entries[i].next = T.entry_head[h];
        T.entry_head[h] = i;
    }
    T.stops = read_pats(args[4], 0, 1, 0, &T.nstops);
    if (T.stops == NULL) {
        clear_tables();
        return NULL;
    }
    for (int i = 0; i < STOP_BUCKETS; i++) {
        T.stop_head[i] = -1;
    }
    for (int i = T.nstops - 1; i >= 0; i--) {
        uint32_t h = crc32_update(0, T.stops[i].bytes, (size_t)T.stops[i].len) % STOP_BUCKETS;
        T.stops[i].next = T.stop_head[h];
        T.stop_head[h] = i;
    }
    fill_bmp_class();
    T.cp_state = PyMem_Calloc(0x110000, 1);
    T.norm_state = PyMem_Calloc(0x110000, 1);
    T.norm_ccc = PyMem_Calloc(0x110000, sizeof(uint16_t));
    if (T.cp_state == NULL || T.norm_state == NULL || T.norm_ccc == NULL) {
        clear_tables();
        return PyErr_NoMemory();
    }
    Py_INCREF(args[5]);
    T.strip_char = args[5];
    Py_INCREF(args[6]);
    T.strip_word = args[6];
    Py_INCREF(args[7]);
    T.norm_char = args[7];
    Py_INCREF(args[8]);
    T.norm_text = args[8];
    T.configured = 1;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------- features */
static inline int
is_nospace(Py_UCS4 c)
{
    for (int i = 0; i < T.nranges; i++) {
        if (c >= T.lo[i] && c <= T.hi[i]) {
            return 1;
        }
    }
    return 0;
}

/* the `[^\W\d_]` class of `re` on str (word characters but digits and _) */
static inline int
is_unit_char(Py_UCS4 c)
{
    if (c < 0x80) {
        return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    }
    return Py_UNICODE_ISALNUM(c) && !Py_UNICODE_ISDECIMAL(c);
}

static void
fill_bmp_class(void)
{
    for (Py_UCS4 c = 0; c < 0x10000; c++) {
        T.bmp_class[c] = (uint8_t)(c >= 0x80 && is_nospace(c) ? 2 : is_unit_char(c));
    }
}

static inline int
unit_class(Py_UCS4 c)
{
    if (c < 0x10000) {
        return T.bmp_class[c];
    }
    return is_nospace(c) ? 2 : is_unit_char(c);
}

typedef struct {
    Py_ssize_t start, len; /* byte range in the UTF-8 text */
    Py_ssize_t cps;        /* code points */
    Py_ssize_t cp_start;   /* first code point's index in the text */
    int nospace;
    int ascii;
} unit_t;

#define SET_SLOTS 16384
static uint64_t set_slots[SET_SLOTS];
static uint32_t set_epoch;

/* how many distinct values a[0..n) holds (a is reordered when n is small);
 * -1 with MemoryError */
static Py_ssize_t
distinct_count(uint32_t *a, Py_ssize_t n)
{
    if (n < 8) { /* insertion sort, then count the runs (from 8 values on,
                  * the hash set below: the sort's moves grow with n) */
        for (Py_ssize_t i = 1; i < n; i++) {
            uint32_t v = a[i];
            Py_ssize_t j = i;
            while (j > 0 && a[j - 1] > v) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = v;
        }
        Py_ssize_t size = n > 0;
        for (Py_ssize_t i = 1; i < n; i++) {
            size += a[i] != a[i - 1];
        }
        return size;
    }
    /* an open-addressing set at most half full; a slot holds value + 2^32 */
    int bits = 1;
    while (((Py_ssize_t)1 << bits) < 2 * n) {
        bits++;
    }
    if (((size_t)1 << bits) <= SET_SLOTS) {
        /* the usual size: a static table whose slots are tagged with the
         * call (epoch), so that it needs no clearing (the calloc and its
         * zeroing were a third of this function) */
        if (++set_epoch == 0) {
            memset(set_slots, 0, sizeof(set_slots));
            set_epoch = 1;
        }
        uint64_t tag = (uint64_t)set_epoch << 32;
        size_t mask = ((size_t)1 << bits) - 1;
        Py_ssize_t size = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t key = tag | a[i];
            size_t at = (size_t)((a[i] * 0x9E3779B1u) >> (32 - (bits < 32 ? bits : 32))) & mask;
            while ((set_slots[at] & 0xFFFFFFFF00000000u) == tag && set_slots[at] != key) {
                at = (at + 1) & mask;
            }
            if (set_slots[at] != key) {
                set_slots[at] = key;
                size++;
            }
        }
        return size;
    }
    uint64_t *set = PyMem_Calloc((size_t)1 << bits, sizeof(uint64_t));
    if (set == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t mask = ((size_t)1 << bits) - 1;
    Py_ssize_t size = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t key = (uint64_t)a[i] | ((uint64_t)1 << 32);
        size_t at = (size_t)((a[i] * 0x9E3779B1u) >> (32 - (bits < 32 ? bits : 32))) & mask;
        while (set[at] && set[at] != key) {
            at = (at + 1) & mask;
        }
        if (!set[at]) {
            set[at] = key;
            size++;
        }
    }
    PyMem_Free(set);
    return size;
}

/* the classes of concept entries that are prefixes of a stripped word */
static int
entry_classes(const uint8_t *w, Py_ssize_t len)
{
    if (len < 3) {
        return 0;
    }
    int cls = 0;
    for (int i = T.entry_head[entry_hash(w)]; i >= 0; i = T.entries[i].next) {
        const pat_t *e = &T.entries[i];
        if (e->len <= len && memcmp(e->bytes, w, (size_t)e->len) == 0) {
            cls |= e->cls;
        }
    }
    return cls;
}

/* one code point's stripped form, asking strip_char the first time;
 * -1 on error, 0 when the word must be stripped whole, else 1 with
 * out and outlen set (outlen 0: the character itself) */
static int
char_strip(Py_UCS4 c, const uint8_t **out, int *outlen)
{
    uint8_t st = T.cp_state[c];
    if (st == 0) {
        PyObject *ch = PyUnicode_FromOrdinal((int)c);
        if (ch == NULL) {
            return -1;
        }
        PyObject *r = PyObject_CallOneArg(T.strip_char, ch);
        if (r == NULL) {
            Py_DECREF(ch);
            return -1;
        }
        if (r == Py_None) {
            st = 2;
        }
        else if (!PyUnicode_Check(r)) {
            Py_DECREF(ch);
            Py_DECREF(r);
            PyErr_SetString(PyExc_TypeError, "strip_char must return str or None");
            return -1;
        }
        else if (PyUnicode_Compare(r, ch) == 0) {
            st = 1;
        }
        else {
            Py_ssize_t blen;
            uint8_t *b = str_utf8(r, &blen);
            if (b == NULL) {
                Py_DECREF(ch);
                Py_DECREF(r);
                return -1;
            }
            st = 2; /* unless it fits the table */
            if (blen <= 16 && T.nmapped < MAPPED_SLOTS / 2) {
                uint32_t h = (c * 0x9E3779B1u) >> (32 - 12);
                while (T.mapped[h].cp != 0) {
                    h = (h + 1) & (MAPPED_SLOTS - 1);
                }
                T.mapped[h].cp = c;
                T.mapped[h].len = (uint8_t)blen;
                memcpy(T.mapped[h].bytes, b, (size_t)blen);
                T.nmapped++;
                st = 3;
            }
            PyMem_Free(b);
        }
        Py_DECREF(ch);
        Py_DECREF(r);
        T.cp_state[c] = st;
    }
    if (st == 2) {
        return 0;
    }
    if (st == 1) {
        *outlen = 0;
        return 1;
    }
    uint32_t h = (c * 0x9E3779B1u) >> (32 - 12);
    while (T.mapped[h].cp != c) {
        h = (h + 1) & (MAPPED_SLOTS - 1);
    }
    *out = T.mapped[h].bytes;
    *outlen = T.mapped[h].len;
    return 1;
}

/* classes of one non-ASCII word (text._strip_marks, then the entries);
 * -1 on error */
static int
word_classes(int kind, const void *data, const unit_t *u, uint8_t *scratch)
{
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < u->cps; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, u->cp_start + i);
        const uint8_t *rep = NULL;
        int rlen = 0;
        int ok = c < 0x80 ? (rlen = 0, 1) : char_strip(c, &rep, &rlen);
        if (ok < 0) {
            return -1;
        }
        if (ok == 0) { /* the whole word through the Python */
            PyObject *w = PyUnicode_FromKindAndData(
                kind, (const char *)data + (size_t)u->cp_start * (size_t)kind, u->cps);
            if (w == NULL) {
                return -1;
            }
            PyObject *r = PyObject_CallOneArg(T.strip_word, w);
            Py_DECREF(w);
            if (r == NULL) {
                return -1;
            }
            if (!PyUnicode_Check(r)) {
                Py_DECREF(r);
                PyErr_SetString(PyExc_TypeError, "strip_word must return str");
                return -1;
            }
            Py_ssize_t blen;
            uint8_t *b = str_utf8(r, &blen);
            Py_DECREF(r);
            if (b == NULL) {
                return -1;
            }
            int cls = entry_classes(b, blen);
            PyMem_Free(b);
            return cls;
        }
        if (rlen == 0) {
            at += put_utf8(scratch + at, c);
        }
        else {
            memcpy(scratch + at, rep, (size_t)rlen);
            at += rlen;
        }
    }
    return entry_classes(scratch, at);
}

static PyObject *
make_result(const uint32_t *words, Py_ssize_t size, int elicit, PyObject *terms, uint32_t anchor)
{
    /* tuples filled directly: Py_BuildValue parsed its format per prompt */
    PyObject *sk = PyTuple_New(4), *res = PyTuple_New(5);
    if (sk == NULL || res == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < 4; i++) {
        PyObject *w = PyLong_FromUnsignedLong((unsigned long)words[i]);
        if (w == NULL) {
            goto fail;
        }
        PyTuple_SET_ITEM(sk, i, w);
    }
    PyObject *n = PyLong_FromSsize_t(size), *a = PyLong_FromUnsignedLong((unsigned long)anchor);
    if (n == NULL || a == NULL) {
        Py_XDECREF(n);
        Py_XDECREF(a);
        goto fail;
    }
    PyTuple_SET_ITEM(res, 0, sk);
    PyTuple_SET_ITEM(res, 1, n);
    PyTuple_SET_ITEM(res, 2, Py_NewRef(elicit ? Py_True : Py_False));
    PyTuple_SET_ITEM(res, 3, terms);
    PyTuple_SET_ITEM(res, 4, a);
    return res;
fail:
    Py_XDECREF(sk);
    Py_XDECREF(res);
    Py_DECREF(terms);
    return NULL;
}

static int
is_stop(const uint8_t *b, Py_ssize_t len, uint32_t crc)
{
    for (int i = T.stop_head[crc % STOP_BUCKETS]; i >= 0; i = T.stops[i].next) {
        if (T.stops[i].len == len && memcmp(T.stops[i].bytes, b, (size_t)len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The UTF-8 of a non-ASCII text and its units, in one pass: a character of a
 * script without spaces is a unit alone, a run of unit characters is one.
 * The open run is kept in locals and stored when it ends (storing it per
 * character was a third of this loop). Returns the number of units; *nbytes
 * the UTF-8 length. Inlined per kind (a constant here). */
static inline __attribute__((always_inline)) Py_ssize_t
text_units(int kind, const void *data, Py_ssize_t n, uint8_t *out, unit_t *units,
           Py_ssize_t *nbytes)
{
    Py_ssize_t nu = 0, at = 0;
    Py_ssize_t run_start = -1, run_cp = 0, run_cps = 0; /* run_start < 0: no open run */
    int run_ascii = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        Py_ssize_t before = at;
        at += put_utf8(out + at, c);
        int uc = unit_class(c);
        if (uc == 1) {
            if (run_start < 0) {
                run_start = before;
                run_cp = i;
                run_cps = 0;
                run_ascii = 1;
            }
            run_cps++;
            run_ascii &= c < 0x80;
            continue;
        }
        if (run_start >= 0) {
            units[nu].start = run_start;
            units[nu].len = before - run_start;
            units[nu].cps = run_cps;
            units[nu].cp_start = run_cp;
            units[nu].nospace = 0;
            units[nu].ascii = run_ascii;
            nu++;
            run_start = -1;
        }
        if (uc == 2) {
            units[nu].start = before;
            units[nu].len = at - before;
            units[nu].cps = 1;
            units[nu].cp_start = i;
            units[nu].nospace = 1;
            units[nu].ascii = 0;
            nu++;
        }
    }
    if (run_start >= 0) {
        units[nu].start = run_start;
        units[nu].len = at - run_start;
        units[nu].cps = run_cps;
        units[nu].cp_start = run_cp;
        units[nu].nospace = 0;
        units[nu].ascii = run_ascii;
        nu++;
    }
    *nbytes = at;
    return nu;
}

/* the features of a text given as code points of one kind (ascii: all < 0x80) */
static PyObject *core_rest(int kind, const void *data, int ascii, const uint8_t *utf8,
                           Py_ssize_t nbytes, const unit_t *units, Py_ssize_t nu);

static PyObject *
core(int kind, const void *data, Py_ssize_t n, int ascii)
{
    PyObject *result = NULL;
    uint8_t *utf8_own = NULL;
    unit_t *units = NULL;
    const uint8_t *utf8;
    Py_ssize_t nbytes;
    /* 1. the UTF-8 text and its units, in one pass */
    units = PyMem_Malloc(((size_t)n + 1) * sizeof(unit_t));
    if (units == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t nu = 0;
    if (ascii) {
        utf8 = (const uint8_t *)data;
        nbytes = n;
        Py_ssize_t i = 0;
        while (i < n) {
            /* bmp_class of an ASCII byte is is_unit_char's answer, by a load */
            while (i < n && !T.bmp_class[utf8[i]]) {
                i++;
            }
            if (i >= n) {
                break;
            }
            Py_ssize_t s = i;
            while (i < n && T.bmp_class[utf8[i]]) {
                i++;
            }
            units[nu].start = units[nu].cp_start = s;
            units[nu].len = units[nu].cps = i - s;
            units[nu].nospace = 0;
            units[nu].ascii = 1;
            nu++;
        }
    }
    else {
        utf8_own = PyMem_Malloc((size_t)n * 4 + 4);
        if (utf8_own == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        /* one loop per kind (features_raw hands over UCS-4), so that
         * PyUnicode_READ does not branch on the kind per character */
        Py_ssize_t at;
        if (kind == PyUnicode_4BYTE_KIND) {
            nu = text_units(PyUnicode_4BYTE_KIND, data, n, utf8_own, units, &at);
        }
        else if (kind == PyUnicode_2BYTE_KIND) {
            nu = text_units(PyUnicode_2BYTE_KIND, data, n, utf8_own, units, &at);
        }
        else {
            nu = text_units(PyUnicode_1BYTE_KIND, data, n, utf8_own, units, &at);
        }
        utf8_own[at] = 0;
        utf8 = utf8_own;
        nbytes = at;
    }
    result = core_rest(kind, data, ascii, utf8, nbytes, units, nu);
done:
    PyMem_Free(units);
    PyMem_Free(utf8_own);
    return result;
}

/* steps 2-5 of core, from the UTF-8 text and its units (not owned); kind and
 * data are the code points the units index (cp_start), read for non-ASCII
 * words only */
static PyObject *
core_rest(int kind, const void *data, int ascii, const uint8_t *utf8, Py_ssize_t nbytes,
          const unit_t *units, Py_ssize_t nu)
{
    PyObject *result = NULL;
    uint8_t *scratch = NULL;
    uint32_t *sh = NULL;
    if (nu == 0) {
        uint32_t ones[4] = {1, 1, 1, 1};
        PyObject *terms = PyList_New(0);
        if (terms != NULL) {
            result = make_result(ones, 0, 0, terms, 1);
        }
        goto done;
    }
    /* 2. shingles: CRC-32 of neighbouring units joined by a space, sorted, distinct */
    Py_ssize_t nsh = nu > 1 ? nu - 1 : 1;
    sh = PyMem_Malloc((size_t)nsh * sizeof(uint32_t));
    if (sh == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (nu == 1) {
        sh[0] = crc32_update(0, utf8 + units[0].start, (size_t)units[0].len);
    }
    else {
        for (Py_ssize_t i = 0; i < nsh; i++) {
            const unit_t *a = &units[i], *b = &units[i + 1];
            Py_ssize_t gap = a->start + a->len;
            if (b->start == gap + 1 && utf8[gap] == ' ') {
                /* "a b" is in the text as it is (words one space apart): one
                 * call over the range, in 8- and 4-byte steps, rather than
                 * three calls that go byte by byte over short units */
                sh[i] = crc32_inline(0, utf8 + a->start, (size_t)(b->start + b->len - a->start));
                continue;
            }
            /* three inlined steps on the register: a third of the shingles
             * (units of scripts without spaces, punctuation between words)
             * were three calls */
            uint32_t c = crc_raw(0xFFFFFFFFu, utf8 + a->start, (size_t)a->len);
            c = crc_table[0][(c ^ ' ') & 0xFF] ^ (c >> 8);
            sh[i] = ~crc_raw(c, utf8 + b->start, (size_t)b->len);
        }
    }
    /* 3. the b-bit MinHash sketch (text.sketch) and the anchor. The Python
     * sorts the distinct shingles; all it reads from the sorted list is each
     * bin's smallest hash, the ANCHORS smallest and how many there are, which
     * one pass gives without sorting (the sort was a quarter of the kernel) */
    Py_ssize_t size = distinct_count(sh, nsh);
    if (size < 0) {
        goto done;
    }
    uint32_t binmin[SKETCH_BINS];
    int bins[SKETCH_BINS];
    int left = SKETCH_BINS;
    for (int b = 0; b < SKETCH_BINS; b++) {
        bins[b] = -1;
        binmin[b] = 0;
    }
    uint32_t low[ANCHORS];
    Py_ssize_t na = 0;
    for (Py_ssize_t i = 0; i < nsh; i++) {
        uint32_t h = sh[i];
        int b = h & 15;
        if (bins[b] < 0) {
            bins[b] = 0;
            binmin[b] = h;
            left--;
        }
        else if (h < binmin[b]) {
            binmin[b] = h;
        }
        if (na == ANCHORS && h >= low[ANCHORS - 1]) {
            continue;
        }
        Py_ssize_t j = 0;
        while (j < na && low[j] < h) {
            j++;
        }
        if (j < na && low[j] == h) {
            continue;
        }
        for (Py_ssize_t k = na < ANCHORS ? na : ANCHORS - 1; k > j; k--) {
            low[k] = low[k - 1];
        }
        low[j] = h;
        if (na < ANCHORS) {
            na++;
        }
    }
    for (int b = 0; b < SKETCH_BINS; b++) {
        if (bins[b] >= 0) {
            bins[b] = (binmin[b] >> 4) & 0xFF;
        }
    }
    uint32_t words[4];
    for (int i = 0; i < SKETCH_BINS && left; i++) {
        if (bins[i] < 0) {
            int j = (i + 1) % SKETCH_BINS;
            while (bins[j] < 0) {
                j = (j + 1) % SKETCH_BINS;
            }
            bins[i] = bins[j];
        }
    }
    for (int i = 0; i < 4; i++) {
        uint32_t w = (uint32_t)bins[4 * i] | (uint32_t)bins[4 * i + 1] << 8
                     | (uint32_t)bins[4 * i + 2] << 16 | (uint32_t)bins[4 * i + 3] << 24;
        words[i] = w ? w : 1;
    }
    uint8_t anchor_bytes[4 * ANCHORS];
    for (Py_ssize_t i = 0; i < na; i++) {
        anchor_bytes[4 * i] = (uint8_t)low[i];
        anchor_bytes[4 * i + 1] = (uint8_t)(low[i] >> 8);
        anchor_bytes[4 * i + 2] = (uint8_t)(low[i] >> 16);
        anchor_bytes[4 * i + 3] = (uint8_t)(low[i] >> 24);
    }
    uint32_t anchor = crc32_update(0, anchor_bytes, (size_t)(4 * na));
    if (anchor == 0) {
        anchor = 1;
    }
    /* 4. elicitation (text.elicitation): idioms and markers as substrings,
     * concept prefixes of the words of 3 or more characters */
    int seen = 0;
    if (nbytes >= 4) {
        /* the loop every byte goes through holds the bitmap test only (the
         * idiom check was in its condition: a tenth of the kernel) */
        const uint8_t *bitmap = T.pat_bitmap;
        const Py_ssize_t stride = T.pat_stride;
        for (Py_ssize_t i = 0, last = nbytes - 4; i <= last; i += stride) {
            uint32_t h = head_hash(utf8 + i);
            if (__builtin_expect(!(bitmap[h >> 3] & (1 << (h & 7))), 1)) {
                continue;
            }
            for (int g = T.pat_head[h]; g >= 0; g = T.grams[g].next) {
                const pat_t *pt = &T.pats[T.grams[g].pat];
                Py_ssize_t at = i - T.grams[g].off;
                /* markers count in non-ASCII text only, as in the Python */
                if ((pt->cls == IDIOM || !ascii) && at >= 0 && pt->len <= nbytes - at
                    && memcmp(pt->bytes, utf8 + at, (size_t)pt->len) == 0) {
                    seen |= pt->cls;
                }
            }
            if (seen & IDIOM) {
                break;
            }
        }
    }
    if (!(seen & IDIOM)) {
        Py_ssize_t longest = 0;
        for (Py_ssize_t i = 0; i < nu; i++) {
            if (units[i].len > longest) {
                longest = units[i].len;
            }
        }
        scratch = PyMem_Malloc((size_t)longest * 16 + 16);
        if (scratch == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < nu; i++) {
            if ((seen & 3) == 3 || (seen & 12) == 12) {
                break;
            }
            const unit_t *u = &units[i];
            if (u->cps < 3) {
                continue;
            }
            int cls = u->ascii ? entry_classes(utf8 + u->start, u->len)
                               : word_classes(kind, data, u, scratch);
            if (cls < 0) {
                goto done;
            }
            seen |= cls;
        }
    }
    int elicit = (seen & IDIOM) || (seen & 3) == 3 || (seen & 12) == 12;
    /* 5. topic terms (text.topic_terms) */
    /* the hashes first, then a list of their number (no appends) */
    uint32_t found[TOPIC_TERMS];
    Py_ssize_t nfound = 0;
    Py_ssize_t prev = -1; /* unit index of the previous character unit */
    Py_ssize_t upto = nu < TOPIC_UNITS ? nu : TOPIC_UNITS;
    for (Py_ssize_t i = 0; i < upto && nfound < TOPIC_TERMS; i++) {
        const unit_t *u = &units[i];
        uint32_t h;
        int add = 0;
        if (u->nospace) {
            if (prev >= 0) {
                h = crc32_update(0, utf8 + units[prev].start, (size_t)units[prev].len);
                h = crc32_update(h, utf8 + u->start, (size_t)u->len);
                add = 1;
            }
            prev = i;
        }
        else {
            prev = -1;
            if (u->cps > 2) {
                h = crc32_inline(0, utf8 + u->start, (size_t)u->len);
                add = !is_stop(utf8 + u->start, u->len, h);
            }
        }
        if (add) {
            found[nfound++] = h;
        }
    }
    PyObject *terms = PyList_New(nfound);
    if (terms == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < nfound; i++) {
        PyObject *v = PyLong_FromUnsignedLong(found[i]);
        if (v == NULL) {
            Py_DECREF(terms);
            goto done;
        }
        PyList_SET_ITEM(terms, i, v);
    }
    result = make_result(words, size, elicit, terms, anchor);
done:
    PyMem_Free(sh);
    PyMem_Free(scratch);
    return result;
}

static int
check_configured(void)
{
    if (!T.configured) {
        PyErr_SetString(PyExc_RuntimeError, "_textkern.configure was not called");
        return -1;
    }
    return 0;
}

static PyObject *
features(PyObject *self, PyObject *text)
{
    (void)self;
    if (check_configured() < 0) {
        return NULL;
    }
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "features(text: str)");
        return NULL;
    }
    return core(PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text),
                PyUnicode_IS_ASCII(text));
}

/* one code point's normalisation, asking norm_char the first time; -1 on
 * error, 0 when its piece must go through norm_text, else 1 with out and outlen
 * set (outlen 0: the character itself) */
static int norm_fill(Py_UCS4 c);

static inline __attribute__((always_inline)) int
norm_lookup(Py_UCS4 c, const Py_UCS4 **out, Py_ssize_t *outlen)
{
    uint8_t st = T.norm_state[c];
    if (__builtin_expect(st == 0, 0)) {
        int r = norm_fill(c);
        if (r < 0) {
            return -1;
        }
        st = (uint8_t)r;
    }
    if (st == 2) {
        return 0;
    }
    if (st == 1) {
        *outlen = 0;
        return 1;
    }
    uint32_t h = (c * 0x9E3779B1u) >> (32 - 14);
    while (T.norm_map[h].cp != c) {
        h = (h + 1) & (NORM_SLOTS - 1);
    }
    *out = T.norm_pool + T.norm_map[h].at;
    *outlen = T.norm_map[h].len;
    return 1;
}

/* asks norm_char for a code point seen the first time: its state, or -1 on
 * error (out of line: the per-character loops inline the look-up) */
static __attribute__((noinline)) int
norm_fill(Py_UCS4 c)
{
    uint8_t st = 0;
    {
        PyObject *ch = PyUnicode_FromOrdinal((int)c);
        if (ch == NULL) {
            return -1;
        }
        PyObject *r = PyObject_CallOneArg(T.norm_char, ch);
        if (r == NULL) {
            Py_DECREF(ch);
            return -1;
        }
        PyObject *full = r;
        if (r == Py_None) {
            st = 2;
        }
        else if (!PyTuple_Check(full) || PyTuple_GET_SIZE(full) != 3
                 || !PyUnicode_Check(PyTuple_GET_ITEM(full, 0))
                 || !PyLong_Check(PyTuple_GET_ITEM(full, 1))
                 || !PyLong_Check(PyTuple_GET_ITEM(full, 2))) {
            Py_DECREF(ch);
            Py_DECREF(full);
            PyErr_SetString(PyExc_TypeError, "norm_char must return (str, int, int) or None");
            return -1;
        }
        else {
            long first = PyLong_AsLong(PyTuple_GET_ITEM(full, 1));
            long last = PyLong_AsLong(PyTuple_GET_ITEM(full, 2));
            T.norm_ccc[c] = (uint16_t)((first & 0xFF) << 8 | (last & 0xFF));
            r = PyTuple_GET_ITEM(full, 0);
            Py_INCREF(r);
            Py_DECREF(full);
        }
        if (st == 2) {
            /* None */
        }
        else if (PyUnicode_Compare(r, ch) == 0) {
            st = 1;
        }
        else {
            Py_ssize_t rn = PyUnicode_GET_LENGTH(r);
            st = 2; /* unless it fits the table */
            if (T.nnorm < NORM_SLOTS / 2 && rn > 0) {
                if (T.pool_len + (size_t)rn > T.pool_cap) {
                    size_t cap = T.pool_cap ? T.pool_cap * 2 : 4096;
                    while (cap < T.pool_len + (size_t)rn) {
                        cap *= 2;
                    }
                    Py_UCS4 *pool = PyMem_Realloc(T.norm_pool, cap * sizeof(Py_UCS4));
                    if (pool == NULL) {
                        Py_DECREF(ch);
                        Py_DECREF(r);
                        PyErr_NoMemory();
                        return -1;
                    }
                    T.norm_pool = pool;
                    T.pool_cap = cap;
                }
                int rk = PyUnicode_KIND(r);
                const void *rd = PyUnicode_DATA(r);
                for (Py_ssize_t i = 0; i < rn; i++) {
                    T.norm_pool[T.pool_len + (size_t)i] = PyUnicode_READ(rk, rd, i);
                }
                uint32_t h = (c * 0x9E3779B1u) >> (32 - 14);
                while (T.norm_map[h].cp != 0) {
                    h = (h + 1) & (NORM_SLOTS - 1);
                }
                T.norm_map[h].cp = c;
                T.norm_map[h].at = (uint32_t)T.pool_len;
                T.norm_map[h].len = (uint32_t)rn;
                T.pool_len += (size_t)rn;
                T.nnorm++;
                st = 3;
            }
        }
        Py_DECREF(ch);
        Py_DECREF(r);
        T.norm_state[c] = st;
    }
    return st;
}

/* features_raw's normalisation of a non-ASCII text into *bufp (UCS-4, *mp
 * characters, *capp room), one loop per kind (a constant when inlined), so
 * that PyUnicode_READ does not branch on the kind per character. 0, or -1
 * with an exception; *bufp stays the caller's to free either way. */
static inline __attribute__((always_inline)) int
norm_into(int kind, const void *data, Py_ssize_t n, PyObject *s, Py_UCS4 **bufp, size_t *capp,
          size_t *mp, Py_ssize_t i0, Py_ssize_t seg_i0, size_t seg_m0, int last_ccc0)
{
    /* from character i0 on, with *mp characters in *bufp and the state the
     * loop had at the top of round i0 (all 0 from the start); norm_units
     * hands over here when a character needs the Python */
    Py_UCS4 *buf = *bufp;
    size_t cap = *capp, m = *mp;
    int last_ccc = last_ccc0; /* of the previous character's decomposition's end */
    /* the last normalisation boundary: a character whose decomposition
     * starts with a starter that composes with nothing before it (ASCII, or
     * a table character of first class 0). Nothing composes or reorders
     * across one, so the normalisation of a text is that of its pieces
     * between boundaries: a character the table cannot take sends only its
     * piece through norm_text, not the whole text (the whole text was 10% of
     * the kernel's instructions for 1.2% of prompts) */
    Py_ssize_t seg_i = seg_i0;
    size_t seg_m = seg_m0;
    for (Py_ssize_t i = i0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        const Py_UCS4 *rep = NULL;
        Py_ssize_t rlen = 0;
        if (c < 0x80) {
            c = c >= 'A' && c <= 'Z' ? c | 0x20 : c;
            last_ccc = 0;
            seg_i = i;
            seg_m = m;
        }
        else {
            int ok = norm_lookup(c, &rep, &rlen);
            if (ok < 0) {
                goto fail;
            }
            if (ok == 1) {
                /* a mark after marks of a higher class would be reordered */
                int first = T.norm_ccc[c] >> 8;
                if (first == 0) {
                    seg_i = i;
                    seg_m = m;
                }
                else if (last_ccc > first) {
                    ok = 0;
                }
                last_ccc = T.norm_ccc[c] & 0xFF;
            }
            if (ok == 0) { /* its piece, up to the next boundary, through the Python */
                Py_ssize_t j = i + 1;
                for (; j < n; j++) {
                    Py_UCS4 d = PyUnicode_READ(kind, data, j);
                    if (d < 0x80) {
                        break;
                    }
                    const Py_UCS4 *drep;
                    Py_ssize_t dlen;
                    int dok = norm_lookup(d, &drep, &dlen);
                    if (dok < 0) {
                        goto fail;
                    }
                    if (dok == 1 && (T.norm_ccc[d] >> 8) == 0) {
                        break;
                    }
                }
                PyObject *piece = PyUnicode_Substring(s, seg_i, j);
                if (piece == NULL) {
                    goto fail;
                }
                PyObject *t = PyObject_CallOneArg(T.norm_text, piece);
                Py_DECREF(piece);
                if (t == NULL) {
                    goto fail;
                }
                if (!PyUnicode_Check(t)) {
                    Py_DECREF(t);
                    PyErr_SetString(PyExc_TypeError, "norm_text must return str");
                    goto fail;
                }
                Py_ssize_t tn = PyUnicode_GET_LENGTH(t);
                int tk = PyUnicode_KIND(t);
                const void *td = PyUnicode_DATA(t);
                m = seg_m;
                if (m + (size_t)tn + (size_t)(n - j) + 1 > cap) {
                    cap = cap * 2 + (size_t)tn + (size_t)(n - j);
                    Py_UCS4 *grown = PyMem_Realloc(buf, cap * sizeof(Py_UCS4));
                    if (grown == NULL) {
                        Py_DECREF(t);
                        PyErr_NoMemory();
                        goto fail;
                    }
                    buf = grown;
                }
                for (Py_ssize_t k = 0; k < tn; k++) {
                    buf[m++] = PyUnicode_READ(tk, td, k);
                }
                Py_DECREF(t);
                /* j is a boundary (or the end): the next character starts
                 * a piece of its own */
                seg_i = j;
                seg_m = m;
                last_ccc = 0;
                i = j - 1;
                continue;
            }
        }
        /* room: cap >= m + (n - i) + 1 holds at the top of every round, so a
         * character that stays one needs no check */
        if (rlen > 1 && m + (size_t)rlen + (size_t)(n - i) > cap) {
            cap = cap * 2 + (size_t)rlen;
            Py_UCS4 *grown = PyMem_Realloc(buf, cap * sizeof(Py_UCS4));
            if (grown == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            buf = grown;
        }
        if (rlen == 0) {
            buf[m++] = c;
        }
        else {
            for (Py_ssize_t j = 0; j < rlen; j++) {
                buf[m++] = rep[j];
            }
        }
    }
    *bufp = buf;
    *capp = cap;
    *mp = m;
    return 0;
fail:
    *bufp = buf;
    *capp = cap;
    *mp = m;
    return -1;
}

/* the open run of unit characters and the units so far, of norm_units */
typedef struct {
    Py_ssize_t at, nu, run_start, run_cp, run_cps; /* run_start < 0: no open run */
    int run_ascii;
    Py_UCS4 high; /* the OR of every character: < 0x80 when all are ASCII */
} unit_scan;

/* one normalised character, the m-th: into buf, its UTF-8 into out and its
 * units, exactly as text_units does for buf[m] */
static inline __attribute__((always_inline)) void
unit_put(unit_scan *u, Py_UCS4 *buf, uint8_t *out, unit_t *units, size_t m, Py_UCS4 c)
{
    buf[m] = c;
    Py_ssize_t before = u->at;
    u->at += put_utf8(out + before, c);
    u->high |= c;
    int uc = unit_class(c);
    if (uc == 1) {
        if (u->run_start < 0) {
            u->run_start = before;
            u->run_cp = (Py_ssize_t)m;
            u->run_cps = 0;
            u->run_ascii = 1;
        }
        u->run_cps++;
        u->run_ascii &= c < 0x80;
        return;
    }
    if (u->run_start >= 0) {
        unit_t *t = &units[u->nu++];
        t->start = u->run_start;
        t->len = before - u->run_start;
        t->cps = u->run_cps;
        t->cp_start = u->run_cp;
        t->nospace = 0;
        t->ascii = u->run_ascii;
        u->run_start = -1;
    }
    if (uc == 2) {
        unit_t *t = &units[u->nu++];
        t->start = before;
        t->len = u->at - before;
        t->cps = 1;
        t->cp_start = (Py_ssize_t)m;
        t->nospace = 1;
        t->ascii = 0;
    }
}

/* norm_into and core's step 1 (text_units) in one pass: the normalised
 * characters into *bufp, their UTF-8 into *outp and the units into *unitsp
 * (all three sized from *capp: cap, 4 cap + 4 and cap + 1; grown together).
 * The two passes were a quarter of the kernel's instructions on the
 * realistic workload. A character the table cannot take (norm_into sends its
 * piece through the Python, which may replace characters already written)
 * hands the rest over to norm_into, from that character with the loop's
 * state; the caller then makes the UTF-8 and units from the whole, as
 * before. 1: done in one pass (*nbytesp, *nup, *asciip set); 0: handed
 * over (*bufp complete); -1 with an exception. The buffers stay the
 * caller's to free either way. */
static inline __attribute__((always_inline)) int
norm_units(int kind, const void *data, Py_ssize_t n, PyObject *s, Py_UCS4 **bufp,
           uint8_t **outp, unit_t **unitsp, size_t *capp, size_t *mp, Py_ssize_t *nbytesp,
           Py_ssize_t *nup, int *asciip)
{
    Py_UCS4 *buf = *bufp;
    uint8_t *out = *outp;
    unit_t *units = *unitsp;
    size_t cap = *capp, m = 0;
    int last_ccc = 0;
    Py_ssize_t seg_i = 0;
    size_t seg_m = 0;
    unit_scan u = {0, 0, -1, 0, 0, 1, 0};
    int st = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        const Py_UCS4 *rep = NULL;
        Py_ssize_t rlen = 0;
        if (c < 0x80) {
            /* a run of ASCII (most characters of most non-ASCII prompts):
             * lowered, one byte each, a unit character or a separator (never
             * a unit alone), each a normalisation boundary */
            for (;;) {
                c = ascii_lower[c];
                buf[m] = c;
                out[u.at] = (uint8_t)c;
                if (T.bmp_class[c]) {
                    if (u.run_start < 0) {
                        u.run_start = u.at;
                        u.run_cp = (Py_ssize_t)m;
                        u.run_cps = 0;
                        u.run_ascii = 1;
                    }
                    u.run_cps++;
                }
                else if (u.run_start >= 0) {
                    unit_t *t = &units[u.nu++];
                    t->start = u.run_start;
                    t->len = u.at - u.run_start;
                    t->cps = u.run_cps;
                    t->cp_start = u.run_cp;
                    t->nospace = 0;
                    t->ascii = u.run_ascii;
                    u.run_start = -1;
                }
                u.at++;
                m++;
                if (i + 1 >= n) {
                    break;
                }
                Py_UCS4 d = PyUnicode_READ(kind, data, i + 1);
                if (d >= 0x80) {
                    break;
                }
                c = d;
                i++;
            }
            last_ccc = 0;
            seg_i = i;
            seg_m = m - 1;
            continue;
        }
        int ok = norm_lookup(c, &rep, &rlen);
        if (ok < 0) {
            st = -1;
            goto out;
        }
        int first = 0;
        if (ok == 1) {
            first = T.norm_ccc[c] >> 8;
            if (first != 0 && last_ccc > first) {
                ok = 0;
            }
        }
        if (ok == 0) {
            /* norm_into from round i, with the state at its top */
            *mp = m;
            st = norm_into(kind, data, n, s, &buf, &cap, mp, i, seg_i, seg_m, last_ccc) < 0 ? -1 : 0;
            goto out;
        }
        if (first == 0) {
            seg_i = i;
            seg_m = m;
        }
        last_ccc = T.norm_ccc[c] & 0xFF;
        /* room: cap >= m + (n - i) + 1 at the top of every round, as in
         * norm_into; the UTF-8 (4 bytes a character at most) and the units
         * (one a character at most) follow cap */
        if (rlen > 1 && m + (size_t)rlen + (size_t)(n - i) > cap) {
            cap = cap * 2 + (size_t)rlen;
            Py_UCS4 *grown = PyMem_Realloc(buf, cap * sizeof(Py_UCS4));
            if (grown == NULL) {
                PyErr_NoMemory();
                st = -1;
                goto out;
            }
            buf = grown;
            uint8_t *grown_out = PyMem_Realloc(out, cap * 4 + 4);
            if (grown_out == NULL) {
                PyErr_NoMemory();
                st = -1;
                goto out;
            }
            out = grown_out;
            unit_t *grown_units = PyMem_Realloc(units, (cap + 1) * sizeof(unit_t));
            if (grown_units == NULL) {
                PyErr_NoMemory();
                st = -1;
                goto out;
            }
            units = grown_units;
        }
        if (rlen == 0) {
            unit_put(&u, buf, out, units, m++, c);
        }
        else {
            for (Py_ssize_t j = 0; j < rlen; j++) {
                unit_put(&u, buf, out, units, m++, rep[j]);
            }
        }
    }
    if (u.run_start >= 0) {
        unit_t *t = &units[u.nu++];
        t->start = u.run_start;
        t->len = u.at - u.run_start;
        t->cps = u.run_cps;
        t->cp_start = u.run_cp;
        t->nospace = 0;
        t->ascii = u.run_ascii;
    }
    out[u.at] = 0;
    *mp = m;
    *nbytesp = u.at;
    *nup = u.nu;
    *asciip = u.high < 0x80;
out:
    *bufp = buf;
    *outp = out;
    *unitsp = units;
    *capp = cap;
    return st;
}

/* features(text.normalize(s)) for a prompt already cut to its scanned part:
 * ASCII is lowered here; other text is normalised character by character
 * from a table filled by norm_char (text._norm_char: NFKC + case fold of one
 * character, when a text's is the concatenation of its characters'), else
 * by norm_text, piece by piece (norm_into). */
static PyObject *
features_raw(PyObject *self, PyObject *s)
{
    (void)self;
    if (check_configured() < 0) {
        return NULL;
    }
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "features_raw(text: str)");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    PyObject *result = NULL;
    if (PyUnicode_IS_ASCII(s)) {
        uint8_t stack[4096]; /* only its first n bytes are read */
        uint8_t *low = n <= (Py_ssize_t)sizeof(stack) ? stack : PyMem_Malloc((size_t)n + 1);
        if (low == NULL) {
            return PyErr_NoMemory();
        }
        const uint8_t *src = data;
        Py_ssize_t i = 0;
        /* 8 bytes at a time: every byte is below 0x80, so adding 0x3F ('A'
         * + 0x3F = 0x80) sets a byte's top bit from 'A' up and adding 0x25
         * ('Z' + 0x25 = 0x7F) from 'Z' + 1 up, with no carry between bytes;
         * the difference marks A-Z, whose bit 0x20 is then set */
        for (; i + 8 <= n; i += 8) {
            uint64_t x;
            memcpy(&x, src + i, 8);
            uint64_t upper = (x + 0x3F3F3F3F3F3F3F3Full) & ~(x + 0x2525252525252525ull)
                             & 0x8080808080808080ull;
            x |= upper >> 2;
            memcpy(low + i, &x, 8);
        }
        for (; i < n; i++) {
            low[i] = ascii_lower[src[i]];
        }
        result = core(PyUnicode_1BYTE_KIND, low, n, 1);
        if (low != stack) {
            PyMem_Free(low);
        }
        return result;
    }
    size_t cap = (size_t)n + 64, m = 0;
    Py_UCS4 *buf = PyMem_Malloc(cap * sizeof(Py_UCS4));
    uint8_t *out = PyMem_Malloc(cap * 4 + 4);
    unit_t *units = PyMem_Malloc((cap + 1) * sizeof(unit_t));
    if (buf == NULL || out == NULL || units == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t nbytes = 0, nu = 0;
    int all_ascii = 0, st;
    if (kind == PyUnicode_4BYTE_KIND) {
        st = norm_units(PyUnicode_4BYTE_KIND, data, n, s, &buf, &out, &units, &cap, &m, &nbytes,
                        &nu, &all_ascii);
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        st = norm_units(PyUnicode_2BYTE_KIND, data, n, s, &buf, &out, &units, &cap, &m, &nbytes,
                        &nu, &all_ascii);
    }
    else {
        st = norm_units(PyUnicode_1BYTE_KIND, data, n, s, &buf, &out, &units, &cap, &m, &nbytes,
                        &nu, &all_ascii);
    }
    if (st < 0) {
        goto done;
    }
    if (st == 1) {
        /* what core gives for buf (kind 4, or its bytes when all ASCII: the
         * same UTF-8 and units, and the ASCII path reads no code points) */
        result = core_rest(PyUnicode_4BYTE_KIND, buf, all_ascii, out, nbytes, units, nu);
        goto done;
    }
    /* after the loop: a piece normalised by the Python may have replaced
     * characters already counted */
    all_ascii = 1;
    for (size_t i = 0; i < m; i++) {
        if (buf[i] >= 0x80) {
            all_ascii = 0;
            break;
        }
    }
    if (all_ascii) { /* ASCII after all ("ﬁle" is "file"): as bytes */
        uint8_t *low = PyMem_Malloc(m + 1);
        if (low == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (size_t i = 0; i < m; i++) {
            low[i] = (uint8_t)buf[i];
        }
        result = core(PyUnicode_1BYTE_KIND, low, (Py_ssize_t)m, 1);
        PyMem_Free(low);
    }
    else {
        result = core(PyUnicode_4BYTE_KIND, buf, (Py_ssize_t)m, 0);
    }
done:
    PyMem_Free(buf);
    PyMem_Free(out);
    PyMem_Free(units);
    return result;
}

static PyObject *
crc32_py(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint32_t c = crc32_update(0, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(c);
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(ranges, idioms, entries, markers, stop, strip_char, strip_word, norm_char, "
     "norm_text): the tables"},
    {"features", features, METH_O,
     "features(text) -> (sketch, size, elicit, terms, anchor) of a normalised text"},
    {"features_raw", features_raw, METH_O,
     "features_raw(text) -> features(text.normalize(text)) of a prompt's scanned part"},
    {"crc32", crc32_py, METH_O, "crc32(data) -> int: zlib.crc32(data)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_textkern",
    "C kernel of detectors.text.prompt_features (see detectors/_textkern.c)", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__textkern(void)
{
    crc_init();
    lower_init();
    return PyModule_Create(&module);
}
