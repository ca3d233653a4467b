/* Sealed channels v2, transport, in C (seal.c): one session's keys, counter and replay
 * window, shared by the C datapath (fastpath.c) and the Python one (transport.py holds a
 * Box when the extension is there), so that either may seal or open the next datagram.
 *
 *     transport  0x24 000000 | receiver index 4 | counter 8 (LE) | ciphertext | tag 16
 */
#ifndef RRQCTL_SEAL_H
#define RRQCTL_SEAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include <openssl/evp.h>

#define SEAL_HEADER 16
#define SEAL_TAG 16
#define SEAL_OVERHEAD (SEAL_HEADER + SEAL_TAG)
#define SEAL_WINDOW 2048 /* counters, as transport.WINDOW */
#define SEAL_TRANSPORT 0x24
/* what open() refuses (as transport.py's drop reasons) */
#define SEAL_REPLAY (-1)
#define SEAL_TOO_OLD (-2)
#define SEAL_BAD_TAG (-3)

typedef struct {
    PyObject_HEAD
    EVP_CIPHER_CTX *enc, *dec;
    uint8_t prefix[8]; /* 0x24 000000 and the peer's index: the header of what we send */
    uint64_t counter;  /* the next one we seal with */
    uint64_t top;      /* the highest counter opened, once any is */
    int any;
    uint8_t seen[SEAL_WINDOW / 8];
} Box;

extern PyTypeObject BoxType;

/* frame (n bytes) sealed into out (n + SEAL_OVERHEAD bytes of room): its length, 0 if the
 * cipher failed (it does not: keys and lengths are checked before) */
size_t box_seal(Box *b, const uint8_t *frame, size_t n, uint8_t *out);

/* The payload of datagram (n >= SEAL_OVERHEAD bytes, a transport message for this box)
 * opened into out (n - SEAL_OVERHEAD bytes of room): its length, or SEAL_REPLAY,
 * SEAL_TOO_OLD, SEAL_BAD_TAG (the window unchanged) */
long box_open(Box *b, const uint8_t *datagram, size_t n, uint8_t *out);

#endif
