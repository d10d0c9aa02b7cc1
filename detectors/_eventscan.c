/* A cheap, conservative look at one JSONL line: the event's account id and
 * time, without decoding it (an optional accelerator for the multi-process
 * replay, streams/replay/parallel.py):
 *
 * scan(line: bytes, max_prompt_chars: int) -> tuple[str, float] | None
 *
 *   (account_id, ts) when the line is certainly one event object that
 *   orjson decodes and detectors.schema.parse_event accepts, with exactly
 *   that account id and time; None when it cannot tell cheaply (a batch
 *   array, an escape in a key or in the account id, a non-ASCII account id,
 *   an RFC 3339 time in another layout than YYYY-MM-DDTHH:MM:SS[.ffffff]
 *   followed by Z or +00:00, a number with an exponent, a repeated field,
 *   and every invalid line). The caller then decodes the line in full.
 *
 * rfc3339(text: str) -> float | None
 *
 *   detectors.schema.parse_ts of a time in that layout (None: any other
 *   text, for the Python); datetime.fromisoformat cost 0.9 us per event.
 *
 * murmur2(data: bytes) -> int
 *
 *   detectors.partitioning.murmur2 (Kafka's default partitioner's hash, a
 *   signed 32-bit int): every new account id and linkage key is placed by
 *   it, and the compiled Python went through arbitrary-precision
 *   multiplications (about 10,000 instructions a key; 8% of the first
 *   20,000 realistic events, while every key is new).
 *
 * Why: with --jobs 2 each child must number the events as the one-process
 * replay does, so it has to know every event's time and whether it is valid,
 * but only its own partitions' events need decoding. Decoding and validating
 * every line in every child was a fifth of each child's time. This checks
 * the whole line (JSON grammar, UTF-8, the field types and lengths that
 * parse_event checks), so that "valid" here is never wrong; being
 * conservative only costs a full decode. tests/unit/test_eventscan.py
 * compares it with decode_message + parse_event.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_NUMBER 64

/* detectors/schema.py */
#define MIN_TS 946684800.0
#define MAX_TS 4102444800.0
#define MS_THRESHOLD 1e11
#define MAX_ID_CHARS 256
#define MAX_FIELD_CHARS 1024
#define MAX_TOKENS 10000000

typedef const unsigned char *cur_t;

typedef struct {
    cur_t start;      /* first byte after the opening quote */
    cur_t end;        /* the closing quote */
    Py_ssize_t chars; /* code points after unescaping */
    int escaped;
    int ascii;
} str_t;

enum { F_UNKNOWN = -1, F_ACCOUNT, F_TS, F_STR, F_PROMPT, F_TOKENS, F_THINKING };

typedef struct {
    const char *name;
    int kind;
} field_t;

/* the keys parse_event reads (the bit of each is its index) */
static const field_t FIELDS[] = {
    {"account_id", F_ACCOUNT},
    {"ts", F_TS},
    {"request_id", F_STR},
    {"model", F_STR},
    {"topic", F_STR},
    {"org_id", F_STR},
    {"api_key_id", F_STR},
    {"ip", F_STR},
    {"user_agent", F_STR},
    {"payment_fingerprint", F_STR},
    {"stop_reason", F_STR},
    {"system_prompt_fingerprint", F_STR},
    {"prompt", F_PROMPT},
    {"input_tokens", F_TOKENS},
    {"output_tokens", F_TOKENS},
    {"max_tokens", F_TOKENS},
    {"thinking", F_THINKING},
};
#define N_FIELDS ((int)(sizeof(FIELDS) / sizeof(FIELDS[0])))

static cur_t
ws(cur_t p, cur_t end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

static int
hex4(cur_t p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (unsigned)(c - 'A' + 10);
        } else {
            return -1;
        }
    }
    *out = v;
    return 0;
}

static int
is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* A string at *pp (on its opening quote): strict JSON and UTF-8, no escaped
 * surrogates (orjson rejects lone ones; pairs are left to the full decode). */
static cur_t
scan_string(cur_t p, cur_t end, str_t *s)
{
    p++;
    s->start = p;
    s->chars = 0;
    s->escaped = 0;
    s->ascii = 1;
    while (p < end) {
        /* 8 plain ASCII bytes at a time (no quote, backslash, control or
         * non-ASCII byte): prompts are long, and byte by byte the scan cost
         * half of what decoding the line does */
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
            uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
            uint64_t special = ((x - ones * 0x20) | (q - ones) | (b - ones)) & ~x & high;
            if ((x & high) | special) {
                break;
            }
            p += 8;
            s->chars += 8;
        }
        if (p >= end) {
            break;
        }
        unsigned char c = *p;
        if (c == '"') {
            s->end = p;
            return p + 1;
        }
        if (c == '\\') {
            s->escaped = 1;
            if (p + 1 >= end) {
                return NULL;
            }
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                break;
            case 'u': {
                unsigned v;
                if (end - p < 6 || hex4(p + 2, &v) < 0 || (v >= 0xD800 && v <= 0xDFFF)) {
                    return NULL;
                }
                s->ascii &= v < 0x80;
                p += 6;
                break;
            }
            default:
                return NULL;
            }
            s->chars++;
            continue;
        }
        if (c < 0x20) {
            return NULL;
        }
        if (c < 0x80) {
            p++;
            s->chars++;
            continue;
        }
        s->ascii = 0;
        Py_ssize_t left = end - p;
        if (c >= 0xC2 && c <= 0xDF) {
            if (left < 2 || !is_cont(p[1])) {
                return NULL;
            }
            p += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (left < 3 || !is_cont(p[1]) || !is_cont(p[2])
                || (c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)) {
                return NULL;
            }
            p += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (left < 4 || !is_cont(p[1]) || !is_cont(p[2]) || !is_cont(p[3])
                || (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F)) {
                return NULL;
            }
            p += 4;
        } else {
            return NULL;
        }
        s->chars++;
    }
    return NULL;
}

/* A number: JSON grammar, no exponent (left to the full decode), at most
 * MAX_NUMBER bytes. *frac says whether it has a fraction part. */
static cur_t
scan_number(cur_t p, cur_t end, int *frac)
{
    cur_t start = p;
    *frac = 0;
    if (p < end && *p == '-') {
        p++;
    }
    if (p >= end) {
        return NULL;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        *frac = 1;
        if (p >= end || *p < '0' || *p > '9') {
            return NULL;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        return NULL;
    }
    if (p - start > MAX_NUMBER) {
        return NULL;
    }
    return p;
}

static cur_t
literal(cur_t p, cur_t end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) {
        return NULL;
    }
    return p + n;
}

static cur_t skip_value(cur_t p, cur_t end, int depth);

static cur_t
skip_container(cur_t p, cur_t end, int depth)
{
    int object = *p == '{';
    unsigned char close = object ? '}' : ']';
    if (depth > MAX_DEPTH) {
        return NULL;
    }
    p = ws(p + 1, end);
    if (p < end && *p == close) {
        return p + 1;
    }
    for (;;) {
        if (object) {
            str_t key;
            if (p >= end || *p != '"' || (p = scan_string(p, end, &key)) == NULL) {
                return NULL;
            }
            p = ws(p, end);
            if (p >= end || *p != ':') {
                return NULL;
            }
            p = ws(p + 1, end);
        }
        if ((p = skip_value(p, end, depth + 1)) == NULL) {
            return NULL;
        }
        p = ws(p, end);
        if (p >= end) {
            return NULL;
        }
        if (*p == close) {
            return p + 1;
        }
        if (*p != ',') {
            return NULL;
        }
        p = ws(p + 1, end);
    }
}

static cur_t
skip_value(cur_t p, cur_t end, int depth)
{
    str_t s;
    int frac;
    if (p >= end) {
        return NULL;
    }
    switch (*p) {
    case '"':
        return scan_string(p, end, &s);
    case '{': case '[':
        return skip_container(p, end, depth);
    case 't':
        return literal(p, end, "true");
    case 'f':
        return literal(p, end, "false");
    case 'n':
        return literal(p, end, "null");
    default:
        return scan_number(p, end, &frac);
    }
}

static int
digits(cur_t p, int n, int *out)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (p[k] < '0' || p[k] > '9') {
            return -1;
        }
        v = v * 10 + (p[k] - '0');
    }
    *out = v;
    return 0;
}

/* days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's algorithm) */
static long long
days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153u * (unsigned)(m + (m > 2 ? -3 : 9)) + 2u) / 5u + (unsigned)d - 1u;
    unsigned doe = yoe * 365u + yoe / 4u - yoe / 100u + doy;
    return era * 146097LL + (long long)doe - 719468LL;
}

/* parse_ts on RFC 3339 text: only YYYY-MM-DDTHH:MM:SS[.f{1,6}] then Z, z or
 * +00:00; datetime.fromisoformat(...).timestamp() is the microseconds since
 * the epoch divided by 10**6 (correctly rounded, as the division here). */
static int
rfc3339(cur_t p, Py_ssize_t n, double *out)
{
    int y, mo, d, h, mi, s, us = 0;
    if (n < 20 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':'
        || digits(p, 4, &y) || digits(p + 5, 2, &mo) || digits(p + 8, 2, &d)
        || digits(p + 11, 2, &h) || digits(p + 14, 2, &mi) || digits(p + 17, 2, &s)) {
        return -1;
    }
    Py_ssize_t k = 19;
    if (p[k] == '.') {
        int nd = 0;
        k++;
        while (k < n && p[k] >= '0' && p[k] <= '9' && nd < 7) {
            us = us * 10 + (p[k] - '0');
            nd++;
            k++;
        }
        if (nd == 0 || nd > 6) {
            return -1;
        }
        for (; nd < 6; nd++) {
            us *= 10;
        }
    }
    if (!((n - k == 1 && (p[k] == 'Z' || p[k] == 'z'))
          || (n - k == 6 && memcmp(p + k, "+00:00", 6) == 0))) {
        return -1;
    }
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > dim[mo - 1] + (mo == 2 && leap)
        || h > 23 || mi > 59 || s > 59) {
        return -1;
    }
    long long secs = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + s;
    if (secs < 0 || secs > 8000000000LL) { /* keeps the microseconds exact in a double */
        return -1;
    }
    double ts = (double)(secs * 1000000LL + us) / 1e6;
    if (!(ts >= MIN_TS && ts < MAX_TS)) { /* parse_event's range */
        return -1;
    }
    *out = ts;
    return 0;
}

/* parse_ts on a JSON number (the text at p..q, JSON grammar, no exponent) */
static int
number_ts(cur_t p, cur_t q, int frac, double *out)
{
    char buf[MAX_NUMBER + 1];
    size_t n = (size_t)(q - p);
    double ts;
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (!frac) {
        if (n > 16) { /* beyond 15 digits: left to the full decode */
            return -1;
        }
        long long v = strtoll(buf, NULL, 10);
        if (v >= (long long)MIN_TS && v < (long long)MAX_TS) {
            *out = (double)v;
            return 0;
        }
        ts = (double)v;
    } else {
        ts = strtod(buf, NULL);
        if (ts >= MIN_TS && ts < MAX_TS) {
            *out = ts;
            return 0;
        }
    }
    if (!isfinite(ts)) {
        return -1;
    }
    if (fabs(ts) >= MS_THRESHOLD) {
        ts /= 1000.0;
    }
    if (!(ts >= MIN_TS && ts < MAX_TS)) {
        return -1;
    }
    *out = ts;
    return 0;
}

/* The value of a known field: 0 valid (for ts, *ts set; for the account id,
 * *acct), -1 not known to be valid. *pp moves past the value. */
static int
field_value(int kind, cur_t *pp, cur_t end, Py_ssize_t max_prompt, double *ts, str_t *acct)
{
    cur_t p = *pp;
    str_t s;
    int frac;
    if (p >= end) {
        return -1;
    }
    if (*p == 'n' && kind != F_ACCOUNT && kind != F_TS) { /* null: absent */
        return (*pp = literal(p, end, "null")) == NULL ? -1 : 0;
    }
    switch (kind) {
    case F_ACCOUNT:
        if (*p != '"' || (p = scan_string(p, end, &s)) == NULL || s.escaped || !s.ascii
            || s.chars < 1 || s.chars > MAX_ID_CHARS) {
            return -1;
        }
        {
            int blank = 1;
            for (cur_t c = s.start; c < s.end; c++) {
                if (*c < 0x20 || *c > 0x7E) {
                    return -1;
                }
                blank &= *c == ' ';
            }
            if (blank) {
                return -1;
            }
        }
        *acct = s;
        break;
    case F_TS:
        if (*p == '"') {
            if ((p = scan_string(p, end, &s)) == NULL || s.escaped
                || rfc3339(s.start, s.end - s.start, ts) < 0) {
                return -1;
            }
        } else {
            cur_t q = scan_number(p, end, &frac);
            if (q == NULL || number_ts(p, q, frac, ts) < 0) {
                return -1;
            }
            p = q;
        }
        break;
    case F_STR:
    case F_PROMPT:
        if (*p != '"' || (p = scan_string(p, end, &s)) == NULL
            || s.chars > (kind == F_STR ? MAX_FIELD_CHARS : max_prompt)) {
            return -1;
        }
        break;
    case F_TOKENS: {
        cur_t q = scan_number(p, end, &frac);
        if (q == NULL || frac || *p == '-' || q - p > 8) {
            return -1;
        }
        long v = 0;
        for (cur_t c = p; c < q; c++) {
            v = v * 10 + (*c - '0');
        }
        if (v > MAX_TOKENS) {
            return -1;
        }
        p = q;
        break;
    }
    case F_THINKING:
        if ((p = literal(p, end, *p == 't' ? "true" : "false")) == NULL) {
            return -1;
        }
        break;
    default:
        return -1;
    }
    *pp = p;
    return 0;
}

static int
field_of(const str_t *key)
{
    size_t n = (size_t)(key->end - key->start);
    for (int k = 0; k < N_FIELDS; k++) {
        if (strlen(FIELDS[k].name) == n && memcmp(FIELDS[k].name, key->start, n) == 0) {
            return k;
        }
    }
    return F_UNKNOWN;
}

static PyObject *
scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "scan(line: bytes, max_prompt_chars: int)");
        return NULL;
    }
    Py_ssize_t max_prompt = PyLong_AsSsize_t(args[1]);
    if (max_prompt == -1 && PyErr_Occurred()) {
        return NULL;
    }
    cur_t p = (cur_t)PyBytes_AS_STRING(args[0]);
    cur_t end = p + PyBytes_GET_SIZE(args[0]);
    unsigned long seen = 0;
    double ts = 0.0;
    str_t acct = {0};
    p = ws(p, end);
    if (p >= end || *p != '{') {
        Py_RETURN_NONE;
    }
    p = ws(p + 1, end);
    if (p < end && *p == '}') {
        Py_RETURN_NONE;
    }
    for (;;) {
        str_t key;
        if (p >= end || *p != '"' || (p = scan_string(p, end, &key)) == NULL || key.escaped) {
            Py_RETURN_NONE;
        }
        p = ws(p, end);
        if (p >= end || *p != ':') {
            Py_RETURN_NONE;
        }
        p = ws(p + 1, end);
        int f = field_of(&key);
        if (f == F_UNKNOWN) {
            p = skip_value(p, end, 1);
            if (p == NULL) {
                Py_RETURN_NONE;
            }
        } else {
            /* a repeated key: orjson keeps the last value; left to it */
            if (seen & (1UL << f)
                || field_value(FIELDS[f].kind, &p, end, max_prompt, &ts, &acct) < 0) {
                Py_RETURN_NONE;
            }
            seen |= 1UL << f;
        }
        p = ws(p, end);
        if (p >= end) {
            Py_RETURN_NONE;
        }
        if (*p == '}') {
            break;
        }
        if (*p != ',') {
            Py_RETURN_NONE;
        }
        p = ws(p + 1, end);
    }
    if (ws(p + 1, end) != end || !(seen & 1UL) || !(seen & 2UL)) {
        Py_RETURN_NONE;
    }
    PyObject *account = PyUnicode_DecodeASCII((const char *)acct.start,
                                              acct.end - acct.start, NULL);
    if (account == NULL) {
        return NULL;
    }
    PyObject *when = PyFloat_FromDouble(ts);
    if (when == NULL) {
        Py_DECREF(account);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, account, when);
    Py_DECREF(account);
    Py_DECREF(when);
    return result;
}

/* parse_ts of a str in the layout rfc3339() reads (what producers send, and
 * the simulator): the same float, or None for the Python to parse (any other
 * layout, and every invalid text, so that its error message stays its own). */
static PyObject *
rfc3339_py(PyObject *self, PyObject *arg)
{
    (void)self;
    double ts;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "rfc3339(text: str)");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(arg)
        || rfc3339(PyUnicode_1BYTE_DATA(arg), PyUnicode_GET_LENGTH(arg), &ts) < 0) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(ts);
}

static PyObject *
murmur2_py(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    const Py_ssize_t length = view.len;
    const uint32_t m = 0x5BD1E995u;
    uint32_t h = 0x9747B28Cu ^ (uint32_t)length;
    const Py_ssize_t n4 = length / 4;
    for (Py_ssize_t i = 0; i < n4; i++) {
        const unsigned char *q = data + 4 * i;
        uint32_t k = (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16)
                     | ((uint32_t)q[3] << 24);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    const Py_ssize_t extra = length % 4;
    const Py_ssize_t idx = length & ~(Py_ssize_t)3;
    if (extra >= 3) {
        h ^= (uint32_t)data[idx + 2] << 16;
    }
    if (extra >= 2) {
        h ^= (uint32_t)data[idx + 1] << 8;
    }
    if (extra >= 1) {
        h ^= (uint32_t)data[idx];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    PyBuffer_Release(&view);
    return PyLong_FromLong((long)(int32_t)h);
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(line, max_prompt_chars) -> (account_id, ts) | None: a valid event line's key"},
    {"rfc3339", rfc3339_py, METH_O,
     "rfc3339(text) -> float | None: parse_ts of YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+00:00)"},
    {"murmur2", murmur2_py, METH_O, "murmur2(data) -> int: Kafka's murmur2, signed 32-bit"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_eventscan",
    "Account id and time of a JSONL event line without decoding it (optional; None when "
    "unsure, and the caller decodes).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__eventscan(void)
{
    return PyModule_Create(&module);
}
