/* Sealed channels v2, transport, in C: see seal.h. ChaCha20-Poly1305 from OpenSSL's
 * libcrypto (the library `cryptography` uses on Debian), one cipher context per direction
 * keyed once; each datagram sets only its nonce (4 zero bytes and the counter, LE). */
#include "seal.h"

#include <string.h>

static void nonce_of(uint64_t counter, uint8_t nonce[12])
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

size_t box_seal(Box *b, const uint8_t *frame, size_t n, uint8_t *out)
{
    uint8_t nonce[12];
    int len = 0, fin = 0;
    if (b->enc == NULL)
        return 0; /* (a Box never initialised) */
    uint64_t c = b->counter++;
    nonce_of(c, nonce);
    memcpy(out, b->prefix, 8);
    memcpy(out + 8, nonce + 4, 8);
    if (n > INT32_MAX || EVP_EncryptInit_ex(b->enc, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(b->enc, out + SEAL_HEADER, &len, frame, (int)n) != 1 ||
        EVP_EncryptFinal_ex(b->enc, out + SEAL_HEADER + len, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(b->enc, EVP_CTRL_AEAD_GET_TAG, SEAL_TAG,
                            out + SEAL_HEADER + len + fin) != 1)
        return 0;
    return SEAL_HEADER + (size_t)len + (size_t)fin + SEAL_TAG;
}

static int seen(const Box *b, uint64_t c)
{
    uint64_t i = c % SEAL_WINDOW;
    return b->seen[i >> 3] >> (i & 7) & 1;
}

static void mark(Box *b, uint64_t c)
{
    if (!b->any || c > b->top) {
        if (!b->any || c - b->top >= SEAL_WINDOW) {
            memset(b->seen, 0, sizeof b->seen);
        } else {
            for (uint64_t k = b->top + 1; k < c; k++) /* skipped over: not seen (yet) */
                b->seen[(k % SEAL_WINDOW) >> 3] &= (uint8_t) ~(1u << (k % SEAL_WINDOW & 7));
        }
        b->top = c;
        b->any = 1;
    }
    uint64_t i = c % SEAL_WINDOW;
    b->seen[i >> 3] |= (uint8_t)(1u << (i & 7));
}

long box_open(Box *b, const uint8_t *datagram, size_t n, uint8_t *out)
{
    uint64_t c = 0;
    if (b->dec == NULL)
        return SEAL_BAD_TAG; /* (a Box never initialised) */
    for (int i = 7; i >= 0; i--)
        c = c << 8 | datagram[8 + i];
    if (b->any && c <= b->top) {
        if (b->top - c >= SEAL_WINDOW)
            return SEAL_TOO_OLD;
        if (seen(b, c))
            return SEAL_REPLAY;
    }
    uint8_t nonce[12];
    nonce_of(c, nonce);
    size_t clen = n - SEAL_OVERHEAD;
    int len = 0, fin = 0;
    if (clen > INT32_MAX || EVP_DecryptInit_ex(b->dec, NULL, NULL, NULL, nonce) != 1 ||
        EVP_DecryptUpdate(b->dec, out, &len, datagram + SEAL_HEADER, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(b->dec, EVP_CTRL_AEAD_SET_TAG, SEAL_TAG,
                            (void *)(datagram + n - SEAL_TAG)) != 1 ||
        EVP_DecryptFinal_ex(b->dec, out + len, &fin) != 1)
        return SEAL_BAD_TAG;
    mark(b, c);
    return (long)len + fin;
}

/* ---- Python's side: Box(send_key, receive_key, prefix) ---------------------------------- */

static EVP_CIPHER_CTX *keyed(const uint8_t *key, int encrypt)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, encrypt) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int Box_init(Box *b, PyObject *args, PyObject *kw)
{
    static char *names[] = {"send_key", "receive_key", "prefix", NULL};
    Py_buffer send, recv, prefix;
    if (b->enc != NULL || b->dec != NULL) {
        PyErr_SetString(PyExc_TypeError, "a Box is keyed once (its counter never goes back)");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*y*y*", names, &send, &recv, &prefix))
        return -1;
    int ok = send.len == 32 && recv.len == 32 && prefix.len == 8;
    if (ok) {
        b->enc = keyed(send.buf, 1);
        b->dec = keyed(recv.buf, 0);
        memcpy(b->prefix, prefix.buf, 8);
    }
    PyBuffer_Release(&send);
    PyBuffer_Release(&recv);
    PyBuffer_Release(&prefix);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "want two 32-byte keys and an 8-byte prefix");
        return -1;
    }
    if (b->enc == NULL || b->dec == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "libcrypto: no ChaCha20-Poly1305");
        return -1;
    }
    return 0;
}

static void Box_dealloc(Box *b)
{
    EVP_CIPHER_CTX_free(b->enc);
    EVP_CIPHER_CTX_free(b->dec);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyObject *Box_seal(Box *b, PyObject *arg)
{
    Py_buffer frame;
    if (PyObject_GetBuffer(arg, &frame, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, frame.len + SEAL_OVERHEAD);
    if (out != NULL &&
        box_seal(b, frame.buf, (size_t)frame.len, (uint8_t *)PyBytes_AS_STRING(out)) == 0) {
        Py_CLEAR(out);
        PyErr_SetString(PyExc_RuntimeError, "libcrypto could not seal");
    }
    PyBuffer_Release(&frame);
    return out;
}

/* open(datagram) -> the payload (bytes), or why not (an int: -1 replay, -2 too old,
 * -3 bad tag). The caller has checked that it is a transport message of this session. */
static PyObject *Box_open(Box *b, PyObject *arg)
{
    Py_buffer d;
    if (PyObject_GetBuffer(arg, &d, PyBUF_SIMPLE) < 0)
        return NULL;
    if (d.len < SEAL_OVERHEAD) {
        PyBuffer_Release(&d);
        PyErr_SetString(PyExc_ValueError, "shorter than a transport message");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, d.len - SEAL_OVERHEAD);
    if (out != NULL) {
        long got = box_open(b, d.buf, (size_t)d.len, (uint8_t *)PyBytes_AS_STRING(out));
        if (got < 0) {
            Py_DECREF(out);
            out = PyLong_FromLong(got);
        }
    }
    PyBuffer_Release(&d);
    return out;
}

static PyObject *Box_get_counter(Box *b, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(b->counter);
}

static int Box_set_counter(Box *b, PyObject *value, void *Py_UNUSED(closure))
{
    unsigned long long c = value ? PyLong_AsUnsignedLongLong(value) : 0;
    if (value == NULL || (c == (unsigned long long)-1 && PyErr_Occurred())) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "counter cannot be deleted");
        return -1;
    }
    if (c < b->counter) {
        PyErr_SetString(PyExc_ValueError, "a Box's counter never goes back");
        return -1;
    }
    b->counter = c;
    return 0;
}

static PyMethodDef Box_methods[] = {
    {"seal", (PyCFunction)Box_seal, METH_O, "seal(frame) -> the transport datagram"},
    {"open", (PyCFunction)Box_open, METH_O,
     "open(datagram) -> payload, or -1 replay, -2 too old, -3 bad tag"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Box_getset[] = {
    {"counter", (getter)Box_get_counter, (setter)Box_set_counter, "the next counter", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject BoxType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rrqctl.engine._fastpath.Box",
    .tp_basicsize = sizeof(Box),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One session's transport keys, counter and replay window (seal.h).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Box_init,
    .tp_dealloc = (destructor)Box_dealloc,
    .tp_methods = Box_methods,
    .tp_getset = Box_getset,
};
