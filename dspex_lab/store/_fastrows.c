/* Records to Arrow buffers in one C pass: the store writer's converter, compiled.
 *
 * Why this exists: the writer converts records on one thread while DuckDB inserts
 * on another, and both need the GIL (DuckDB's Python client takes it back after
 * every task). Converting in Python cost ~4 us per row, most of it per-row object
 * churn (one bytes object per JSON value, one list per field, one lookup per
 * memoized text). Here every column is built straight into its Arrow buffers
 * (values, int64 offsets, validity bitmap), rows are read once, and JSON is
 * written by a small encoder into the column's buffer.
 *
 * It is an accelerator, never the only way: for each column, a value this code
 * does not handle exactly like the Python converter (a str subclass, a set, a
 * non-str dict key, an int beyond 64 bits, a lone surrogate, nesting deeper than
 * 200, ...) makes it give up on that column only (None in the result), and the
 * Python converter in _rows.py builds it instead. Secret *values* are still
 * blanked in Python, over the returned buffers; secret-named *keys* are dropped
 * here with the Python predicate (memoized in the same dict).
 *
 * convert(records, spec, key_memo, is_secret_key, pause=None, every=1024) -> list
 *   spec: sequence of (attribute, kind, optional, tag_name) with kind one of the
 *   K_* numbers below; optional: a missing attribute reads as None; tag_name:
 *   for K_TAG, the key read from the attribute's dict. pause: called every `every`
 *   rows (the writer sleeps there while DuckDB waits for the GIL; a C loop over a
 *   whole chunk would otherwise hold it for tens of milliseconds).
 *   result[i]: None (the Python path must build the column), or
 *     text kinds:  (data bytes, offsets bytes (int64 x n+1), validity bytes|None, nulls)
 *     fixed kinds: (values bytes (8 or 1 byte per row), validity bytes|None, nulls)
 */
#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* memmem */
#endif
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum {
    K_STR = 0,         /* str or None */
    K_JSON = 1,        /* any JSON value; None is NULL */
    K_JSON_SECRET = 2, /* JSON with secret-named keys dropped at any depth */
    K_JSON_TAGS = 3,   /* K_JSON_SECRET, and a falsy value (empty dict) is NULL */
    K_TAG = 4,         /* attribute is a dict (or None): its str value under tag_name */
    K_INT = 5,         /* int64 */
    K_FLOAT = 6,       /* float64 */
    K_BOOL = 7,        /* one byte per row (0/1) */
    K_TS = 8,          /* epoch seconds -> int64 microseconds, rounded half to even */
    K_COUNT = 9
};

#define MAX_DEPTH 200

#ifndef DSPEX_SOURCE_SHA
#define DSPEX_SOURCE_SHA ""  /* built by hand: the import cannot tell if it is current */
#endif

/* A growing byte buffer that is a bytes object all along: handing it to Python at the
 * end is a shrink in place, not a copy (each copy of a batch's column touched fresh
 * pages: ~3 us per page fault on the 2-core VM). */
typedef struct {
    PyObject *bytes;   /* owned; NULL until the first byte */
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    if (!b->bytes) {
        b->bytes = PyBytes_FromStringAndSize(NULL, cap);
        if (!b->bytes) return -1;
    } else if (_PyBytes_Resize(&b->bytes, cap) < 0) {
        b->data = NULL;
        b->len = b->cap = 0;
        return -1;
    }
    b->data = PyBytes_AS_STRING(b->bytes);
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const char *s, Py_ssize_t n) {
    if (n <= 0) return 0;
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static inline int buf_byte(Buf *b, char c) {
    if (b->len == b->cap && buf_reserve(b, 1) < 0) return -1;
    b->data[b->len++] = c;
    return 0;
}

/* The buffer as a bytes object of its length (a new reference; the buffer is empty). */
static PyObject *buf_finish(Buf *b) {
    PyObject *out = b->bytes;
    b->bytes = NULL;
    b->data = NULL;
    if (!out) { b->len = b->cap = 0; return PyBytes_FromStringAndSize("", 0); }
    if (_PyBytes_Resize(&out, b->len) < 0) out = NULL;
    b->len = b->cap = 0;
    return out;
}

static void buf_free(Buf *b) {
    Py_CLEAR(b->bytes);
    b->data = NULL;
    b->len = b->cap = 0;
}

typedef struct {
    int kind;
    int optional;
    int failed;          /* gave up: the Python path builds this column */
    PyObject *name;      /* attribute (borrowed from spec) */
    PyObject *tag;       /* K_TAG: key (borrowed) */
    Buf data;            /* text bytes or fixed-width values */
    PyObject *offsets_bytes; /* text kinds: a bytes object of n + 1 int64 */
    int64_t *offsets;
    uint8_t *validity;   /* n bits */
    Py_ssize_t nulls;
} Column;

/* -- JSON ------------------------------------------------------------------------------- */

typedef struct {
    PyObject *key_memo;      /* dict: key -> bool (shared with _rows.is_secret_key) */
    PyObject *is_secret_key; /* callable */
} Secrets;

/* 1: secret, 0: not, -1: error */
static int secret_key(Secrets *s, PyObject *key) {
    PyObject *hit = PyDict_GetItemWithError(s->key_memo, key);
    if (hit) return PyObject_IsTrue(hit);
    if (PyErr_Occurred()) return -1;
    PyObject *res = PyObject_CallOneArg(s->is_secret_key, key);
    if (!res) return -1;
    int truth = PyObject_IsTrue(res);
    Py_DECREF(res);
    return truth;
}

static const char HEX[] = "0123456789abcdef";

/* Whether any of the 8 bytes needs escaping in JSON: < 0x20, '"' or '\\'. */
static inline int needs_escape8(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = x ^ (ones * '"'), slash = x ^ (ones * '\\');
    uint64_t control = (x - ones * 0x20) & ~x;
    uint64_t zero_q = (quote - ones) & ~quote;
    uint64_t zero_s = (slash - ones) & ~slash;
    return ((control | zero_q | zero_s) & highs) != 0;
}

/* 0: written, 1: not handled here (the column falls back), -1: error */
static int json_str(Buf *b, PyObject *s) {
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    if (!p) { PyErr_Clear(); return 1; }  /* lone surrogates: orjson refuses them too */
    if (buf_reserve(b, n + 2) < 0) return -1;
    b->data[b->len++] = '"';
    Py_ssize_t start = 0, i = 0;
    while (i < n) {
        /* eight plain bytes at a time (the common case: nothing to escape) */
        while (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            if (needs_escape8(x)) break;
            i += 8;
        }
        /* then byte by byte through the 8 that hold an escape (or the tail) */
        Py_ssize_t limit = i + 8 < n ? i + 8 : n;
        for (; i < limit; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c < 0x20 || c == '"' || c == '\\') break;
        }
        if (i == limit) continue;
        unsigned char c = (unsigned char)p[i];
        if (buf_put(b, p + start, i - start) < 0) return -1;
        char esc[6];
        Py_ssize_t m = 2;
        esc[0] = '\\';
        switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
                esc[4] = HEX[c >> 4]; esc[5] = HEX[c & 15];
                m = 6;
        }
        if (buf_put(b, esc, m) < 0) return -1;
        start = ++i;
    }
    if (buf_put(b, p + start, n - start) < 0) return -1;
    return buf_byte(b, '"');
}

static int json_value(Buf *b, PyObject *v, Secrets *secrets, int depth);

/* Shortest round-trip text of recent floats (temperatures, prices and the like repeat
 * from row to row; PyOS_double_to_string costs ~0.2 us). Direct-mapped on the bits;
 * only touched with the GIL held and no Python code in between. */
#define FLOAT_MEMO 256
static struct { uint64_t bits; char len; char text[31]; } float_memo[FLOAT_MEMO];

static int json_float(Buf *b, double x) {
    if (!isfinite(x)) return buf_put(b, "null", 4);  /* like orjson */
    uint64_t bits;
    memcpy(&bits, &x, 8);
    uint64_t h = bits * 0x9E3779B97F4A7C15ULL;
    unsigned slot = (unsigned)(h >> 56) % FLOAT_MEMO;
    if (float_memo[slot].len && float_memo[slot].bits == bits)
        return buf_put(b, float_memo[slot].text, float_memo[slot].len);
    char *text = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!text) return -1;
    size_t m = strlen(text);
    int rc = buf_put(b, text, (Py_ssize_t)m);
    if (m < sizeof float_memo[slot].text) {
        float_memo[slot].bits = bits;
        float_memo[slot].len = (char)m;
        memcpy(float_memo[slot].text, text, m);
    }
    PyMem_Free(text);
    return rc;
}

static int json_int(Buf *b, PyObject *v) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow) return 1;
    if (x == -1 && PyErr_Occurred()) return -1;
    char text[32];
    int m = snprintf(text, sizeof text, "%lld", x);
    return buf_put(b, text, m);
}

static int json_dict(Buf *b, PyObject *v, Secrets *secrets, int depth) {
    if (buf_byte(b, '{') < 0) return -1;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    int first = 1;
    while (PyDict_Next(v, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) return 1;
        /* borrowed from a dict that Python code run meanwhile (is_secret_key, a
         * thread switch) could change: hold both while they are used */
        Py_INCREF(key);
        Py_INCREF(value);
        int rc = 0;
        if (secrets) {
            rc = secret_key(secrets, key);  /* 1: secret, 0: not, -1: error */
            if (rc > 0) { rc = 0; goto next; }
            if (rc < 0) goto next;
        }
        if (!first && buf_byte(b, ',') < 0) { rc = -1; goto next; }
        first = 0;
        rc = json_str(b, key);
        if (rc) goto next;
        if (buf_byte(b, ':') < 0) { rc = -1; goto next; }
        rc = json_value(b, value, secrets, depth + 1);
    next:
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc) return rc;
    }
    return buf_byte(b, '}');
}

static int json_seq(Buf *b, PyObject *v, Secrets *secrets, int depth) {
    if (buf_byte(b, '[') < 0) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(v);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i && buf_byte(b, ',') < 0) return -1;
        PyObject *item = PySequence_Fast_GET_ITEM(v, i);
        Py_INCREF(item);
        int rc = json_value(b, item, secrets, depth + 1);
        Py_DECREF(item);
        if (rc) return rc;
        n = PySequence_Fast_GET_SIZE(v);  /* a list may shrink meanwhile */
    }
    return buf_byte(b, ']');
}

static int json_value(Buf *b, PyObject *v, Secrets *secrets, int depth) {
    if (depth > MAX_DEPTH) return 1;
    if (PyUnicode_CheckExact(v)) return json_str(b, v);
    if (v == Py_None) return buf_put(b, "null", 4);
    if (v == Py_True) return buf_put(b, "true", 4);
    if (v == Py_False) return buf_put(b, "false", 5);
    if (PyLong_CheckExact(v)) return json_int(b, v);
    if (PyFloat_CheckExact(v)) return json_float(b, PyFloat_AS_DOUBLE(v));
    if (PyDict_CheckExact(v)) return json_dict(b, v, secrets, depth);
    if (PyList_CheckExact(v) || PyTuple_CheckExact(v)) return json_seq(b, v, secrets, depth);
    return 1;  /* anything else: the Python path (orjson with its default) */
}

/* -- columns ---------------------------------------------------------------------------- */

static inline void set_null(Column *c, Py_ssize_t row) {
    c->validity[row >> 3] &= (uint8_t)~(1u << (row & 7));
    c->nulls++;
}

static int is_text(int kind) { return kind <= K_TAG; }

static Py_ssize_t fixed_width(int kind) { return kind == K_BOOL ? 1 : 8; }

/* A str's UTF-8 appended as it is (0), or 1 for anything but an exact str that has
 * UTF-8 (a subclass, a lone surrogate): the Python path takes the column. */
static int put_text(Buf *b, PyObject *v) {
    if (!PyUnicode_CheckExact(v)) return 1;
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(v, &n);
    if (!p) { PyErr_Clear(); return 1; }
    return buf_put(b, p, n);
}

/* 0: row added, 1: the column gives up, -1: error. `v` is borrowed. */
static int add_value(Column *c, Py_ssize_t row, PyObject *v, Secrets *secrets) {
    Buf *b = &c->data;
    int rc = 0;
    switch (c->kind) {
    case K_STR:
        if (v == Py_None) { set_null(c, row); break; }
        rc = put_text(b, v);
        break;
    case K_JSON_TAGS:
        if (v != Py_None) {
            int truth = PyObject_IsTrue(v);
            if (truth < 0) return -1;
            if (!truth) { set_null(c, row); break; }
        }
        /* fall through */
    case K_JSON:
    case K_JSON_SECRET:
        /* a top-level null (None, or NaN/inf, which JSON spells null) is a NULL row */
        if (v == Py_None || (PyFloat_CheckExact(v) && !isfinite(PyFloat_AS_DOUBLE(v)))) {
            set_null(c, row);
            break;
        }
        {
            Py_ssize_t start = b->len;
            rc = json_value(b, v, c->kind == K_JSON ? NULL : secrets, 0);
            if (rc > 0) b->len = start;
        }
        break;
    case K_TAG:
        if (v == Py_None) { set_null(c, row); break; }
        if (!PyDict_CheckExact(v)) return 1;
        {
            PyObject *item = PyDict_GetItemWithError(v, c->tag);
            if (!item) {
                if (PyErr_Occurred()) return -1;
                set_null(c, row);
                break;
            }
            if (item == Py_None) { set_null(c, row); break; }
            rc = put_text(b, item);
        }
        break;
    case K_INT: {
        int64_t x = 0;
        if (v == Py_None) set_null(c, row);
        else if (!PyLong_CheckExact(v)) return 1;
        else {
            int overflow = 0;
            long long y = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow) return 1;
            if (y == -1 && PyErr_Occurred()) return -1;
            x = (int64_t)y;
        }
        rc = buf_put(b, (const char *)&x, 8);
        break;
    }
    case K_FLOAT:
    case K_TS: {
        double x = 0.0;
        if (v == Py_None) set_null(c, row);
        else if (PyFloat_CheckExact(v)) x = PyFloat_AS_DOUBLE(v);
        else if (PyLong_CheckExact(v)) {
            x = PyLong_AsDouble(v);
            if (x == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 1; }
        } else return 1;
        if (c->kind == K_FLOAT || v == Py_None) {
            rc = buf_put(b, (const char *)&x, 8);
            break;
        }
        /* like numpy: rint(seconds * 1e6) in the current (half-to-even) rounding mode */
        volatile double scaled = x * 1e6;
        double micros = nearbyint(scaled);
        int64_t out = 0;
        if (!isfinite(micros)) set_null(c, row);
        else if (fabs(micros) >= 9223372036854775808.0) return 1;
        else out = (int64_t)micros;
        rc = buf_put(b, (const char *)&out, 8);
        break;
    }
    case K_BOOL: {
        char x = 0;
        if (v == Py_None) set_null(c, row);
        else if (v == Py_True) x = 1;
        else if (v != Py_False) return 1;
        rc = buf_byte(b, x);
        break;
    }
    default:
        PyErr_SetString(PyExc_ValueError, "unknown column kind");
        return -1;
    }
    if (rc) return rc;
    if (is_text(c->kind)) c->offsets[row + 1] = (int64_t)b->len;
    return 0;
}

static void column_free(Column *c) {
    buf_free(&c->data);
    Py_CLEAR(c->offsets_bytes);
    PyMem_RawFree(c->validity);
    c->offsets = NULL;
    c->validity = NULL;
}

static PyObject *column_result(Column *c, Py_ssize_t n) {
    if (c->failed) Py_RETURN_NONE;
    PyObject *data = buf_finish(&c->data);
    PyObject *validity = c->nulls
        ? PyBytes_FromStringAndSize((const char *)c->validity, (n + 7) / 8)
        : Py_NewRef(Py_None);
    PyObject *nulls = PyLong_FromSsize_t(c->nulls);
    PyObject *offsets = c->offsets_bytes;  /* NULL for fixed-width kinds */
    c->offsets_bytes = NULL;
    c->offsets = NULL;
    PyObject *out = NULL;
    if (data && validity && nulls && (offsets || !is_text(c->kind)))
        out = offsets ? PyTuple_Pack(4, data, offsets, validity, nulls)
                      : PyTuple_Pack(3, data, validity, nulls);
    Py_XDECREF(data);
    Py_XDECREF(validity);
    Py_XDECREF(nulls);
    Py_XDECREF(offsets);
    return out;
}

/* 1: *v holds the attribute, 0: the record has none (only asked when optional: no
 * AttributeError is built for it, which cost ~0.4 us a row), -1: error */
static int get_attr(PyObject *record, PyObject *name, int optional, PyObject **v) {
    if (!optional) {
        *v = PyObject_GetAttr(record, name);
        return *v ? 1 : -1;
    }
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(record, name, v);
#else
    return _PyObject_LookupAttr(record, name, v);
#endif
}

static PyObject *convert(PyObject *self, PyObject *args) {
    PyObject *records, *spec, *key_memo, *is_secret_key, *pause = Py_None;
    Py_ssize_t every = 1024;
    if (!PyArg_ParseTuple(args, "O!OO!O|On:convert", &PyList_Type, &records, &spec,
                          &PyDict_Type, &key_memo, &is_secret_key, &pause, &every))
        return NULL;
    if (every < 1) every = 1;
    PyObject *spec_seq = PySequence_Fast(spec, "spec must be a sequence");
    if (!spec_seq) return NULL;
    Py_ssize_t ncols = PySequence_Fast_GET_SIZE(spec_seq);
    Py_ssize_t n = PyList_GET_SIZE(records);
    Column *cols = PyMem_RawCalloc((size_t)(ncols ? ncols : 1), sizeof(Column));
    PyObject *result = NULL;
    Secrets secrets = {key_memo, is_secret_key};
    if (!cols) { PyErr_NoMemory(); goto done; }
    Py_ssize_t bitmap = (n + 7) / 8;
    for (Py_ssize_t j = 0; j < ncols; j++) {
        Column *c = &cols[j];
        PyObject *entry = PySequence_Fast_GET_ITEM(spec_seq, j);
        PyObject *name, *tag;
        if (!PyArg_ParseTuple(entry, "UiiO:spec entry", &name, &c->kind, &c->optional, &tag))
            goto done;
        if (c->kind < 0 || c->kind >= K_COUNT) {
            PyErr_Format(PyExc_ValueError, "unknown column kind %d", c->kind);
            goto done;
        }
        if (c->kind == K_TAG && !PyUnicode_Check(tag)) {
            PyErr_SetString(PyExc_TypeError, "a tag column needs the tag's name");
            goto done;
        }
        c->name = name;
        c->tag = tag;
        c->validity = PyMem_RawMalloc((size_t)(bitmap ? bitmap : 1));
        if (!c->validity) { PyErr_NoMemory(); goto done; }
        memset(c->validity, 0xff, (size_t)(bitmap ? bitmap : 1));
        if (is_text(c->kind)) {
            c->offsets_bytes = PyBytes_FromStringAndSize(NULL, (n + 1) * 8);
            if (!c->offsets_bytes) goto done;
            c->offsets = (int64_t *)PyBytes_AS_STRING(c->offsets_bytes);
            c->offsets[0] = 0;
        } else if (buf_reserve(&c->data, n * fixed_width(c->kind)) < 0) goto done;
    }
    for (Py_ssize_t i = 0; i < n && i < PyList_GET_SIZE(records); i++) {
        if (i && i % every == 0 && pause != Py_None) {
            PyObject *res = PyObject_CallNoArgs(pause);
            if (!res) goto done;
            Py_DECREF(res);
            if (i >= PyList_GET_SIZE(records)) break;
        }
        PyObject *record = PyList_GET_ITEM(records, i);
        Py_INCREF(record);
        for (Py_ssize_t j = 0; j < ncols; j++) {
            Column *c = &cols[j];
            if (c->failed) continue;
            PyObject *v = NULL;
            int found = get_attr(record, c->name, c->optional, &v);
            if (found <= 0) {
                /* an error reading it: the Python path reports it the way it always has */
                PyErr_Clear();
                if (found < 0 || !c->optional) { c->failed = 1; column_free(c); continue; }
                v = Py_NewRef(Py_None);  /* an optional field the record does not have */
            }
            int rc = add_value(c, i, v, &secrets);
            Py_DECREF(v);
            if (rc < 0) { Py_DECREF(record); goto done; }
            if (rc > 0) { c->failed = 1; column_free(c); }
        }
        Py_DECREF(record);
    }
    if (PyList_GET_SIZE(records) != n) {
        PyErr_SetString(PyExc_RuntimeError, "the record list changed during conversion");
        goto done;
    }
    result = PyList_New(ncols);
    if (!result) goto done;
    for (Py_ssize_t j = 0; j < ncols; j++) {
        PyObject *col = column_result(&cols[j], n);
        if (!col) { Py_CLEAR(result); goto done; }
        PyList_SET_ITEM(result, j, col);
    }
done:
    if (cols) {
        for (Py_ssize_t j = 0; j < ncols; j++) column_free(&cols[j]);
        PyMem_RawFree(cols);
    }
    Py_DECREF(spec_seq);
    return result;
}

/* -- secret search ------------------------------------------------------------------------ */

static inline uint64_t zero_bytes(uint64_t x) {  /* high bit set at (at least) each zero byte */
    return (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
}

static inline int is_bearer_at(const unsigned char *p) {
    static const char word[] = "bearer";
    for (int k = 0; k < 6; k++)
        if ((p[k] | 0x20) != (unsigned char)word[k]) return 0;
    return 1;
}

/* Whether "bearer" occurs in any letter case: one pass, eight bytes at a time, looking
 * for an 'e' with an 'r' four bytes on (bEARER), each candidate checked whole. */
static int has_bearer(const unsigned char *p, Py_ssize_t n) {
    const uint64_t ones = 0x0101010101010101ULL, lower = ones * 0x20;
    Py_ssize_t i = 1;  /* the 'e' of a "bearer" starting at i - 1 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 12 <= n; i += 8) {
        uint64_t e, r;
        memcpy(&e, p + i, 8);
        memcpy(&r, p + i + 4, 8);
        uint64_t hits = zero_bytes((e | lower) ^ (ones * 'e')) &
                        zero_bytes((r | lower) ^ (ones * 'r'));
        while (hits) {
            int k = __builtin_ctzll(hits) >> 3;  /* little-endian: lowest byte first */
            if (is_bearer_at(p + i + k - 1)) return 1;
            hits &= hits - 1;
        }
    }
#endif
    for (i = i - 1; i + 6 <= n; i++)
        if (is_bearer_at(p + i)) return 1;
    return 0;
}

static PyObject *may_hold_secret(PyObject *self, PyObject *args) {
    Py_buffer data;
    PyObject *needles;
    if (!PyArg_ParseTuple(args, "y*O!:may_hold_secret", &data, &PyTuple_Type, &needles))
        return NULL;
    const unsigned char *p = data.buf;
    Py_ssize_t n = data.len;
    int found = has_bearer(p, n);
    for (Py_ssize_t j = 0; !found && j < PyTuple_GET_SIZE(needles); j++) {
        PyObject *needle = PyTuple_GET_ITEM(needles, j);
        if (!PyBytes_Check(needle)) {
            PyBuffer_Release(&data);
            PyErr_SetString(PyExc_TypeError, "needles must be bytes");
            return NULL;
        }
        Py_ssize_t m = PyBytes_GET_SIZE(needle);
        found = m == 0 || (m <= n && memmem(p, (size_t)n, PyBytes_AS_STRING(needle),
                                            (size_t)m) != NULL);
    }
    PyBuffer_Release(&data);
    return PyBool_FromLong(found);
}

static PyMethodDef METHODS[] = {
    {"may_hold_secret", may_hold_secret, METH_VARARGS,
     "may_hold_secret(data, needles) -> whether data holds 'bearer' (any case) or a needle"},
    {"convert", convert, METH_VARARGS,
     "convert(records, spec, key_memo, is_secret_key, pause=None, every=1024) -> list of "
     "column buffers (None: a column left to the Python path)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "_fastrows",
    "Records to Arrow buffers in one C pass (see _rows.py; optional accelerator).",
    -1, METHODS, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastrows(void) {
    PyObject *m = PyModule_Create(&MODULE);
    if (!m) return NULL;
    if (PyModule_AddStringConstant(m, "SOURCE_SHA", DSPEX_SOURCE_SHA) < 0 ||
        PyModule_AddIntConstant(m, "K_STR", K_STR) < 0 ||
        PyModule_AddIntConstant(m, "K_JSON", K_JSON) < 0 ||
        PyModule_AddIntConstant(m, "K_JSON_SECRET", K_JSON_SECRET) < 0 ||
        PyModule_AddIntConstant(m, "K_JSON_TAGS", K_JSON_TAGS) < 0 ||
        PyModule_AddIntConstant(m, "K_TAG", K_TAG) < 0 ||
        PyModule_AddIntConstant(m, "K_INT", K_INT) < 0 ||
        PyModule_AddIntConstant(m, "K_FLOAT", K_FLOAT) < 0 ||
        PyModule_AddIntConstant(m, "K_BOOL", K_BOOL) < 0 ||
        PyModule_AddIntConstant(m, "K_TS", K_TS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
