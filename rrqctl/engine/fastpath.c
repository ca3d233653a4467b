/* The datapath's common case in C (issue 26): rrqctl.engine._fastpath.
 *
 * Python decides, C repeats. The engine's loop (loop.py) hands its epoll set to poll(),
 * which waits with the GIL released. A frame from the tap, or a datagram from a known
 * channel, whose forwarding decision Python has cached (a flow: the channel it came from and
 * its MAC header -> the channel it goes to, valid while the MAC table's version is the one
 * it was made at) is forwarded here: read, looked up, sent or written. Sealed channels' frames
 * are opened and sealed with the sessions Python gave (sessions(): their Boxes, seal.c, which
 * Python's sessions use too). Anything else goes up to Python (an upcall: the frame or the
 * datagrams as read; a payload C opened that no flow covers). Python stays the only place
 * where switch and session rules are written; poll() reports what C did that those rules
 * care about (flows hit: the source MAC seen again; channels heard and said something to)
 * and counts frames per channel for take_counters().
 *
 * Every length is checked before it is used: the datagrams come from the network.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "seal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <string.h>
#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define VNET_HDR_LEN 10    /* struct virtio_net_hdr, as the tap is opened (ports.py) */
#define ETH_HLEN 14
#define HDR_KEY 12         /* destination and source MAC: a flow's key with its channel */
#define HEARTBEAT_MAX 11   /* rrqnet(8): shorter datagrams are heartbeats */
#define RECV_SIZE 65536
#define BATCH 64           /* reads per fd per wake-up, as the Python engine's default */
#define MAX_EVENTS 64
#define UPBUF (2 << 20)  /* bytes handed up in one poll, at most (sized so that it is never full) */
#define UP_SOFT 256       /* upcalls after which the tap is read no more in this poll */
#define UP_MAX 1024
#define FLOW_BITS 12
#define FLOW_SLOTS (1u << FLOW_BITS)
#define ADDR_BITS 12
#define ADDR_SLOTS (1u << ADDR_BITS)
#define MAX_CHANNELS 65536
#define RUN_MAX 64         /* datagrams in one GSO send, as ports.py */
#define RUN_BYTES 65000
#define NO_GSO_FOR 300.0   /* s: a destination whose path refused GSO gets single sends */
#define LONE_GAP 0.001     /* s: a wake this long after the last is interactive (state.py) */
#define RX_SESSIONS 3      /* a sealed channel's sessions, as sessions.MAX_SESSIONS */
#define REJECT_AFTER_MESSAGES (UINT64_MAX - (1u << 13)) /* transport.py's */

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

typedef struct {
    uint8_t ip[16]; /* IPv6, or IPv4 mapped */
    uint16_t port;
    uint32_t scope;
} addr_key;

typedef struct {
    int used, local;
    struct sockaddr_storage sa;
    socklen_t salen;
    addr_key key;
    long max_frame;
    double fresh_for, fresh_until, heard, no_gso_until;
    int heard_dirty, counted;
    unsigned long long rx_frames, rx_bytes, tx_frames, tx_bytes;
    /* a sealed channel: only what its sessions (as Python gave them) seal and open is
     * forwarded here; said: when C last sent it something (sessions.SealedPeer.said) */
    int sealed, said_dirty;
    double said, tx_until;
    Box *tx;
    struct {
        uint8_t index[4];
        Box *box;
        double until;
    } rx[RX_SESSIONS];
} channel;

typedef struct {
    unsigned long long version; /* 0: empty */
    uint32_t src, out;
    uint8_t hdr[HDR_KEY];
    double hit;
    int dirty;
} flow;

typedef struct {
    int used;
    addr_key key;
    uint32_t id;
} addr_slot;

typedef struct {
    int kind; /* 0: a frame from the tap; 1: datagrams from the UDP socket; 2: its error;
               * 3: a frame from channel `seg` that could not be sent; 4: a payload opened
               * from sealed channel `seg`; 5: a sealed datagram from `seg` to `out` that
               * could not be sent */
    struct sockaddr_storage sa;
    socklen_t salen;
    Py_ssize_t start, len, seg; /* in the upcall buffer; seg: datagram size (GRO) */
    uint32_t out;
} upcall;

typedef struct {
    uint32_t src, out; /* channel ids */
    size_t seg, len;   /* the run's datagram size (all but the last), its bytes */
    int n, closed;
    size_t lens[RUN_MAX], frames[RUN_MAX]; /* datagram and frame sizes (sealed: 32 apart) */
    uint32_t flows[RUN_MAX];
    uint8_t buf[RUN_BYTES + RECV_SIZE];
} run;

#define GRO_MAX 64
#define GRO_BYTES 65000
#define CUT_MAX 128 /* segments of one super-frame (64 KB at an MSS of 512 or more) */
#define TCP_HEAD_MAX (ETH_HLEN + 40 + 60)

typedef struct {
    int l3;
    size_t l4, hlen, plen;
    uint32_t seq;
    uint8_t flags;
} segment;

typedef struct {
    int n, closed;
    uint8_t psh;
    segment first;
    uint32_t next_seq;
    size_t payload, used;
    size_t off[GRO_MAX], len[GRO_MAX];
    uint32_t src[GRO_MAX], flows[GRO_MAX];
    uint8_t data[GRO_BYTES + RECV_SIZE];
} taprun;

typedef struct {
    PyObject_HEAD
    int epfd, tapfd, udpfd, family;
    unsigned long long version;
    channel *ch;
    uint32_t nch;
    flow flows[FLOW_SLOTS];
    addr_slot addrs[ADDR_SLOTS];
    uint32_t dirty_flows[FLOW_SLOTS];
    uint32_t ndirty;
    uint8_t buf[RECV_SIZE + VNET_HDR_LEN];
    uint8_t opened[RECV_SIZE]; /* a sealed datagram's payload */
    uint8_t *upbuf; /* frames and datagrams handed up, copied */
    Py_ssize_t upused;
    upcall ups[UP_MAX];
    run run;
    taprun taprun;
    uint32_t tap_id; /* the tap's channel */
    int gro_off, offloads;
    double tap_woke, udp_woke;
    unsigned long long bad_offloads;
    uint8_t cut[RECV_SIZE + CUT_MAX * TCP_HEAD_MAX];
    size_t cut_sizes[CUT_MAX];
    int nups;
    int ready[MAX_EVENTS];
    int nready;
} Datapath;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* time.monotonic()'s clock */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- tables ------------------------------------------------------------------------- */

static uint32_t mix(const uint8_t *p, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u; /* FNV-1a */
    return h;
}

static uint32_t flow_hash(uint32_t src, const uint8_t *hdr)
{
    return mix(hdr, HDR_KEY, 2166136261u ^ (src * 2654435761u)) & (FLOW_SLOTS - 1);
}

static flow *flow_find(Datapath *d, uint32_t src, const uint8_t *hdr)
{
    flow *f = &d->flows[flow_hash(src, hdr)];
    if (f->version == d->version && f->src == src && memcmp(f->hdr, hdr, HDR_KEY) == 0)
        return f;
    return NULL; /* (one slot per key: a collision replaces, a miss goes up to Python) */
}

static int key_of(const struct sockaddr *sa, addr_key *k)
{
    memset(k, 0, sizeof *k);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        k->ip[10] = k->ip[11] = 0xff;
        memcpy(k->ip + 12, &s->sin_addr, 4);
        k->port = s->sin_port;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        memcpy(k->ip, &s->sin6_addr, 16);
        k->port = s->sin6_port;
        k->scope = s->sin6_scope_id;
        return 0;
    }
    return -1;
}

static uint32_t addr_hash(const addr_key *k)
{
    return mix((const uint8_t *)k, sizeof *k, 2166136261u) & (ADDR_SLOTS - 1);
}

static addr_slot *addr_slot_of(Datapath *d, const addr_key *k, int for_insert)
{
    uint32_t h = addr_hash(k);
    addr_slot *free_slot = NULL; /* the first tombstone, if the key is not found after it */
    for (uint32_t i = 0; i < ADDR_SLOTS; i++) {
        addr_slot *s = &d->addrs[(h + i) & (ADDR_SLOTS - 1)];
        if (s->used == 1 && memcmp(&s->key, k, sizeof *k) == 0)
            return s; /* (an address is in the table once: never a second slot for it) */
        if (s->used == 0)
            return !for_insert ? NULL : free_slot ? free_slot : s;
        if (s->used == 2 && for_insert && free_slot == NULL)
            free_slot = s;
    }
    return for_insert ? free_slot : NULL;
}

static channel *channel_at(Datapath *d, uint32_t id)
{
    return id < d->nch && d->ch[id].used ? &d->ch[id] : NULL;
}

/* ---- what goes up ---------------------------------------------------------------------- */

static int up(Datapath *d, int kind, const struct sockaddr_storage *sa, socklen_t salen,
              const uint8_t *data, Py_ssize_t len, Py_ssize_t seg)
{
    if (d->nups >= (int)(sizeof d->ups / sizeof d->ups[0]) || d->upused + len > UPBUF)
        return -1; /* cannot happen: each fd goes up after its first upcall */
    upcall *u = &d->ups[d->nups++];
    u->kind = kind;
    u->salen = salen;
    if (sa)
        memcpy(&u->sa, sa, salen);
    u->start = d->upused;
    u->len = len;
    u->seg = seg;
    memcpy(d->upbuf + d->upused, data, (size_t)len);
    d->upused += len;
    return 0;
}

static void mark_ready(Datapath *d, int fd)
{
    for (int i = 0; i < d->nready; i++)
        if (d->ready[i] == fd)
            return;
    if (d->nready < MAX_EVENTS)
        d->ready[d->nready++] = fd;
}

static void hit(Datapath *d, flow *f, double now)
{
    f->hit = now;
    if (!f->dirty) {
        f->dirty = 1;
        d->dirty_flows[d->ndirty++] = (uint32_t)(f - d->flows);
    }
}

/* ---- sending: runs of datagrams to one channel, one sendmsg with UDP GSO ------------- */

static int gso_refused(int e)
{
    return e == EINVAL || e == EMSGSIZE || e == EIO || e == EOPNOTSUPP;
}

static void counted(Datapath *d, channel *src, channel *out, flow *f, size_t len, double now)
{
    src->rx_frames++;
    src->rx_bytes += len;
    src->counted = 1;
    out->tx_frames++;
    out->tx_bytes += len;
    out->counted = 1;
    hit(d, f, now);
}

/* Send the pending run: one call when GSO may carry it, else one a datagram. What could not
 * be sent goes up to Python (kind 3: a frame from a channel), which sends it again and counts
 * the error as it does its own. 1 if anything went up. */
static int flush_run(Datapath *d, double now)
{
    run *r = &d->run;
    int n = r->n, sent = 0;
    if (n == 0)
        return 0;
    channel *out = channel_at(d, r->out), *src = channel_at(d, r->src);
    r->n = 0;
    if (out == NULL || src == NULL)
        return 0; /* (cannot happen: channels are forgotten between polls only) */
    if (n > 1 && now >= out->no_gso_until) {
        union {
            char buf[CMSG_SPACE(sizeof(uint16_t))];
            struct cmsghdr align;
        } ctl;
        memset(&ctl, 0, sizeof ctl);
        struct iovec iov = {r->buf, r->len};
        struct msghdr msg = {.msg_name = &out->sa, .msg_namelen = out->salen, .msg_iov = &iov,
                             .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = sizeof ctl.buf};
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = (uint16_t)r->seg;
        memcpy(CMSG_DATA(c), &seg, sizeof seg);
        if (sendmsg(d->udpfd, &msg, 0) == (ssize_t)r->len)
            sent = n;
        else if (gso_refused(errno))
            out->no_gso_until = now + NO_GSO_FOR; /* this path will not take it, for now */
        /* (else ENOBUFS, EAGAIN: each frame again, below, one by one) */
    }
    size_t at = 0;
    for (int i = 0; i < n; at += r->lens[i], i++) {
        if (i >= sent) {
            if (sendto(d->udpfd, r->buf + at, r->lens[i], 0, (struct sockaddr *)&out->sa,
                       out->salen) != (ssize_t)r->lens[i]) {
                for (int k = i; k < n; at += r->lens[k], k++) {
                    if (up(d, out->sealed ? 5 : 3, NULL, 0, r->buf + at,
                           (Py_ssize_t)r->lens[k], r->src) == 0)
                        d->ups[d->nups - 1].out = r->out;
                }
                return 1;
            }
        }
        counted(d, src, out, &d->flows[r->flows[i]], r->frames[i], now);
        if (out->sealed) {
            out->said = now;
            out->said_dirty = 1;
        }
    }
    return 0;
}

/* Whether C may send frames to out now: a plain channel, or a sealed one with a session
 * that seals (else Python does: it stages the frame and starts a handshake). */
static int sendable(const channel *out, double now)
{
    return !out->sealed ||
           (out->tx != NULL && now < out->tx_until && out->tx->counter < REJECT_AFTER_MESSAGES);
}

/* Queue frame for out (a remote channel that is sendable), sealed if out is: sent at the
 * next flush. 1 if a flush sent up. */
static int queue(Datapath *d, uint32_t src, uint32_t out_id, flow *f,
                 const uint8_t *frame, size_t len, double now)
{
    run *r = &d->run;
    int upped = 0;
    channel *out = channel_at(d, out_id);
    size_t frame_len = len;
    if (out == NULL)
        return 0; /* (cannot happen: the caller found it) */
    if (out->sealed)
        len += SEAL_OVERHEAD;
    if (r->n && (r->out != out_id || r->src != src || r->closed || len > r->seg ||
                 r->n == RUN_MAX || r->len + len > RUN_BYTES))
        upped = flush_run(d, now);
    if (r->n == 0) {
        r->out = out_id;
        r->src = src;
        r->seg = len;
        r->len = 0;
        r->closed = 0;
    }
    if (!out->sealed)
        memcpy(r->buf + r->len, frame, len);
    else if (box_seal(out->tx, frame, frame_len, r->buf + r->len) != len)
        return upped; /* (libcrypto does not fail on keys and lengths it took) */
    r->len += len;
    r->lens[r->n] = len;
    r->frames[r->n] = frame_len;
    r->flows[r->n++] = (uint32_t)(f - d->flows);
    if (len < r->seg)
        r->closed = 1; /* the last segment of a GSO send may be shorter */
    return upped;
}

/* ---- the tap's side: runs of one TCP flow written as one super-frame --------------------
 *
 * As gro.py (whose docstring says why): consecutive segments of one TCP flow (same headers,
 * contiguous sequence numbers, equal sizes but for a shorter last one, only ACK and a final
 * PSH) go to the tap as one frame with a virtio_net_hdr asking for GSO and a partial
 * checksum. The kernel does not check such a frame's TCP checksums again, so each segment's
 * IPv4 header and TCP checksums are checked here before it joins; one that fails is written
 * alone, for the kernel to check (and drop). */

#define TCP_ACK 0x10
#define TCP_PSH 0x08
#define GSO_TCPV4 1
#define GSO_TCPV6 4

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t sum16(const uint8_t *p, size_t n, uint64_t s)
{
    for (; n > 1; p += 2, n -= 2)
        s += (uint32_t)p[0] << 8 | p[1];
    if (n)
        s += (uint32_t)p[0] << 8;
    return s;
}

static uint16_t fold(uint64_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* frame as a TCP segment that may join a run (0 if it may not). */
static int parse_tcp(const uint8_t *f, size_t n, segment *s)
{
    if (n >= ETH_HLEN + 40 && f[12] == 0x08 && f[13] == 0x00) {
        size_t total = (size_t)f[16] << 8 | f[17];
        /* IHL 5, don't-fragment and no fragment, TCP, not padded */
        if (f[14] != 0x45 || f[20] != 0x40 || f[21] != 0 || f[23] != 6 || total + ETH_HLEN != n)
            return 0;
        s->l3 = 4;
        s->l4 = ETH_HLEN + 20;
    } else if (n >= ETH_HLEN + 60 && f[12] == 0x86 && f[13] == 0xdd) {
        size_t plen = (size_t)f[18] << 8 | f[19];
        if (f[20] != 6 || plen + ETH_HLEN + 40 != n) /* (no extension headers) */
            return 0;
        s->l3 = 6;
        s->l4 = ETH_HLEN + 40;
    } else {
        return 0;
    }
    const uint8_t *t = f + s->l4;
    uint8_t doff = t[12], flags = t[13];
    size_t hlen = s->l4 + (size_t)(doff >> 4) * 4;
    if ((doff & 0x0f) || doff < 0x50 || (flags & ~(TCP_ACK | TCP_PSH)) || !(flags & TCP_ACK) ||
        n <= hlen || hlen > TCP_HEAD_MAX)
        return 0; /* reserved bits, a bad offset, SYN/FIN/RST/URG/ECN, or no payload */
    s->hlen = hlen;
    s->plen = n - hlen;
    s->seq = be32(t + 4);
    s->flags = flags;
    return 1;
}

/* The IPv4 header checksum and the TCP checksum hold. */
static int checksums_ok(const uint8_t *f, size_t n, const segment *s)
{
    if (s->l3 == 4 && fold(sum16(f + ETH_HLEN, 20, 0)) != 0xffff)
        return 0;
    const uint8_t *addrs = s->l3 == 4 ? f + 26 : f + 22;
    size_t l4len = n - s->l4;
    uint64_t sum = sum16(addrs, s->l3 == 4 ? 8 : 32, 6 + (uint64_t)l4len);
    return fold(sum16(f + s->l4, l4len, sum)) == 0xffff;
}

/* Everything but sequence number, IP id, lengths, checksums and PSH is as in the run. */
static int same_flow(const uint8_t *a, const uint8_t *b, const segment *s)
{
    const uint8_t *ta = a + s->l4, *tb = b + s->l4;
    if (memcmp(a, b, ETH_HLEN) != 0)
        return 0;
    if (s->l3 == 4) {
        if (a[15] != b[15] || a[22] != b[22] || memcmp(a + 26, b + 26, 8) != 0)
            return 0; /* TOS, TTL, addresses */
    } else if (memcmp(a + 14, b + 14, 4) != 0 || a[21] != b[21] ||
               memcmp(a + 22, b + 22, 32) != 0) {
        return 0; /* version, class and flow label, hop limit, addresses */
    }
    return memcmp(ta, tb, 4) == 0 && memcmp(ta + 8, tb + 8, 5) == 0 && /* ports, ack, doff */
           memcmp(ta + 14, tb + 14, 2) == 0 && memcmp(ta + 18, tb + 18, 2) == 0 && /* win, urg */
           memcmp(ta + 20, tb + 20, s->hlen - s->l4 - 20) == 0; /* options */
}

/* Write one frame to the tap: 0 on success. */
static int to_tap(Datapath *d, const uint8_t *frame, size_t len)
{
    static const uint8_t plain[VNET_HDR_LEN];
    struct iovec iov[2] = {{(void *)plain, VNET_HDR_LEN}, {(void *)frame, len}};
    return writev(d->tapfd, iov, 2) == (ssize_t)(len + VNET_HDR_LEN) ? 0 : -1;
}

/* The run as one super-frame: 0 on success, else errno. */
static int write_super(Datapath *d)
{
    taprun *r = &d->taprun;
    const segment *s = &r->first;
    uint8_t vnet[VNET_HDR_LEN], head[TCP_HEAD_MAX];
    size_t l4len = s->hlen - s->l4 + r->payload;
    memcpy(head, r->data, s->hlen);
    if (s->l3 == 4) {
        head[16] = (uint8_t)((20 + l4len) >> 8);
        head[17] = (uint8_t)(20 + l4len);
        head[24] = head[25] = 0;
        uint16_t ip = (uint16_t)~fold(sum16(head + ETH_HLEN, 20, 0));
        head[24] = (uint8_t)(ip >> 8);
        head[25] = (uint8_t)ip;
    } else {
        head[18] = (uint8_t)(l4len >> 8);
        head[19] = (uint8_t)l4len;
    }
    head[s->l4 + 13] |= r->psh;
    uint16_t pseudo = fold(sum16(s->l3 == 4 ? head + 26 : head + 22, s->l3 == 4 ? 8 : 32,
                                 6 + (uint64_t)l4len)); /* partial: not inverted */
    head[s->l4 + 16] = (uint8_t)(pseudo >> 8);
    head[s->l4 + 17] = (uint8_t)pseudo;
    /* virtio_net_hdr: flags (NEEDS_CSUM), gso_type, then hdr_len, gso_size, csum_start and
     * csum_offset in the host's byte order (a tap's, as gro.py packs them) */
    uint16_t v[4] = {(uint16_t)s->hlen, (uint16_t)s->plen, (uint16_t)s->l4, 16};
    vnet[0] = 1;
    vnet[1] = s->l3 == 4 ? GSO_TCPV4 : GSO_TCPV6;
    memcpy(vnet + 2, v, sizeof v);
    struct iovec iov[GRO_MAX + 2];
    iov[0] = (struct iovec){vnet, VNET_HDR_LEN};
    iov[1] = (struct iovec){head, s->hlen};
    size_t total = VNET_HDR_LEN + s->hlen;
    for (int i = 0; i < r->n; i++) {
        iov[i + 2] = (struct iovec){r->data + r->off[i] + s->hlen, r->len[i] - s->hlen};
        total += r->len[i] - s->hlen;
    }
    return writev(d->tapfd, iov, r->n + 2) == (ssize_t)total ? 0 : (errno ? errno : EIO);
}

/* Write the pending run to the tap. Frames that could not be written go up to Python
 * (kind 3), which writes them again and counts why. 1 if anything went up. */
static int tap_flush(Datapath *d, double now)
{
    taprun *r = &d->taprun;
    int n = r->n, done = 0, upped = 0;
    if (n == 0)
        return 0;
    int e = n > 1 ? write_super(d) : -1; /* (a lone frame is written as it is, below) */
    r->n = 0;
    if (e == 0)
        done = n;
    else if (e == EINVAL)
        d->gro_off = 1; /* this kernel will not take such frames: one by one from now */
    for (int i = 0; i < n; i++) {
        uint8_t *frame = r->data + r->off[i];
        channel *src = channel_at(d, r->src[i]), *out = channel_at(d, d->tap_id);
        if (src == NULL || out == NULL)
            continue;
        if (i >= done && to_tap(d, frame, r->len[i]) != 0) {
            up(d, 3, NULL, 0, frame, (Py_ssize_t)r->len[i], r->src[i]);
            upped = 1;
            continue;
        }
        counted(d, src, out, &d->flows[r->flows[i]], r->len[i], now);
    }
    return upped;
}

/* A frame from channel src (flow f) for the tap: joins the run, or closes it and starts one,
 * or is written alone. 1 if anything went up to Python. */
static int tap_add(Datapath *d, uint32_t src, flow *f, const uint8_t *frame, size_t len,
                   double now)
{
    taprun *r = &d->taprun;
    segment s;
    int upped = 0;
    int tcp = !d->gro_off && parse_tcp(frame, len, &s) && checksums_ok(frame, len, &s);
    int joins = tcp && r->n > 0 && !r->closed && s.l3 == r->first.l3 && s.hlen == r->first.hlen &&
                s.seq == r->next_seq && s.plen <= r->first.plen && r->n < GRO_MAX &&
                r->used + len <= GRO_BYTES && same_flow(r->data, frame, &s);
    if (!joins)
        upped = tap_flush(d, now);
    if (!tcp) {
        channel *out = channel_at(d, d->tap_id), *from = channel_at(d, src);
        if (to_tap(d, frame, len) != 0) {
            up(d, 3, NULL, 0, frame, (Py_ssize_t)len, src);
            return 1;
        }
        if (from && out)
            counted(d, from, out, f, len, now);
        return upped;
    }
    if (r->n == 0) {
        r->first = s;
        r->used = r->payload = 0;
        r->closed = 0;
        r->psh = 0;
    }
    memcpy(r->data + r->used, frame, len);
    r->off[r->n] = r->used;
    r->len[r->n] = len;
    r->src[r->n] = src;
    r->flows[r->n++] = (uint32_t)(f - d->flows);
    r->used += len;
    r->payload += s.plen;
    r->next_seq = s.seq + (uint32_t)s.plen;
    r->psh = s.flags & TCP_PSH;
    r->closed = r->psh || s.plen < r->first.plen;
    if (r->closed || r->n == GRO_MAX)
        upped |= tap_flush(d, now);
    return upped;
}

static int flush_all(Datapath *d, double now)
{
    int a = flush_run(d, now);
    return tap_flush(d, now) | a;
}

/* ---- the tap's offloads: frames with a partial checksum, and TCP super-frames ----------
 *
 * While the C datapath runs, the tap is opened to offloads (TUN_F_CSUM, TSO4, TSO6): the
 * kernel hands over TCP super-frames of up to 64 KB and frames whose TCP/UDP checksum is
 * left to whoever sends them on. Here checksums are completed and super-frames cut into the
 * segments the wire carries (one plain frame per datagram, as rrqnet sends), each with its
 * own headers and checksums, then sent in one GSO call like any run. */

#define OFFLOADS (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
#define VIRTIO_NEEDS_CSUM 1
#define GSO_NONE 0

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Complete the checksum the kernel left partial: 0, or -1 if the header says nonsense. */
static int complete_csum(uint8_t *frame, size_t len, size_t start, size_t offset)
{
    if (start >= len || offset + 2 > len - start)
        return -1;
    uint16_t c = (uint16_t)~fold(sum16(frame + start, len - start, 0));
    put16(frame + start + offset, c);
    return 0;
}

/* Cut a TCP super-frame (vnet: its header) into segments of gso_size payload bytes, each
 * a complete frame, into out (room for `room` bytes); their sizes in sizes. The number of
 * segments, or -1 if it is not a TCP super-frame this can cut. */
static int cut_tcp(const uint8_t *vnet, const uint8_t *f, size_t n, uint8_t *out, size_t room,
                   size_t *sizes, int max)
{
    uint16_t mss;
    memcpy(&mss, vnet + 4, 2);
    int v4 = vnet[1] == GSO_TCPV4;
    if (vnet[1] != GSO_TCPV4 && vnet[1] != GSO_TCPV6)
        return -1;
    size_t l4 = v4 ? ETH_HLEN + 20 : ETH_HLEN + 40;
    if (mss == 0 || n < l4 + 20)
        return -1;
    if (v4 ? (f[12] != 0x08 || f[13] != 0 || f[14] != 0x45 || f[23] != 6)
           : (f[12] != 0x86 || f[13] != 0xdd || f[20] != 6))
        return -1;
    size_t hlen = l4 + (size_t)(f[l4 + 12] >> 4) * 4;
    if (hlen < l4 + 20 || hlen >= n || hlen > TCP_HEAD_MAX)
        return -1;
    size_t payload = n - hlen;
    int count = (int)((payload + mss - 1) / mss);
    if (count > max || payload + (size_t)count * hlen > room)
        return -1;
    uint32_t seq = be32(f + l4 + 4);
    uint16_t id = get16(f + 18);
    uint8_t flags = f[l4 + 13];
    size_t at = 0;
    for (int i = 0; i < count; i++) {
        size_t part = i == count - 1 ? payload - (size_t)i * mss : mss;
        uint8_t *o = out + at;
        memcpy(o, f, hlen);
        memcpy(o + hlen, f + hlen + (size_t)i * mss, part);
        size_t l4len = hlen - l4 + part;
        if (v4) {
            put16(o + 16, (uint16_t)(20 + l4len));
            put16(o + 18, (uint16_t)(id + i));
            put16(o + 24, 0);
            put16(o + 24, (uint16_t)~fold(sum16(o + ETH_HLEN, 20, 0)));
        } else {
            put16(o + 18, (uint16_t)l4len);
        }
        uint32_t s = seq + (uint32_t)((size_t)i * mss);
        o[l4 + 4] = (uint8_t)(s >> 24);
        o[l4 + 5] = (uint8_t)(s >> 16);
        o[l4 + 6] = (uint8_t)(s >> 8);
        o[l4 + 7] = (uint8_t)s;
        uint8_t fl = flags;
        if (i < count - 1)
            fl &= (uint8_t)~0x09; /* FIN and PSH: the last segment's */
        if (i > 0)
            fl &= (uint8_t)~0x80; /* CWR: the first's */
        o[l4 + 13] = fl;
        put16(o + l4 + 16, 0);
        uint64_t sum = sum16(v4 ? o + 26 : o + 22, v4 ? 8 : 32, 6 + (uint64_t)l4len);
        put16(o + l4 + 16, (uint16_t)~fold(sum16(o + l4, l4len, sum)));
        sizes[i] = hlen + part;
        at += hlen + part;
    }
    return count;
}

/* ---- the tap ------------------------------------------------------------------------ */

/* One frame from the tap (local: its channel): queued for its channel, or up to Python. */
static void tap_frame(Datapath *d, uint32_t local, const uint8_t *frame, size_t len, double now)
{
    flow *f = len >= ETH_HLEN ? flow_find(d, local, frame) : NULL;
    channel *out = f ? channel_at(d, f->out) : NULL;
    if (out == NULL || out->local || (long)len > out->max_frame || !sendable(out, now)) {
        flush_run(d, now); /* (what came before it goes first) */
        if (len > 0)
            up(d, 0, NULL, 0, frame, (Py_ssize_t)len, 0);
        return;
    }
    queue(d, local, f->out, f, frame, len, now);
}

/* Frames from the tap: forwarded where a flow is cached, else handed up (completed: the
 * tap is open to offloads, so its fd is never handed to Python's handler while C runs).
 * Reads until EAGAIN or until enough went up; 1 only on a read error (Python's to see). */
static int from_tap(Datapath *d, uint32_t local, double now)
{
    if (channel_at(d, local) == NULL)
        return 1;
    /* A wake long after the last one is interactive traffic: its first frame is sent at once,
     * not after one more read to see whether a run follows (as the Python engine's LONE_GAP) */
    int lone = now - d->tap_woke >= LONE_GAP;
    d->tap_woke = now;
    for (int n = 0; n < BATCH && d->nups < UP_SOFT && d->upused < UPBUF / 2; n++) {
        if (n == 1 && lone)
            flush_run(d, now);
        ssize_t got = read(d->tapfd, d->buf, sizeof d->buf);
        if (got < 0) {
            int lost = !(errno == EAGAIN || errno == EINTR);
            flush_run(d, now);
            return lost;
        }
        if (got < VNET_HDR_LEN)
            continue;
        const uint8_t *vnet = d->buf;
        uint8_t *frame = d->buf + VNET_HDR_LEN;
        size_t len = (size_t)got - VNET_HDR_LEN;
        if (vnet[1] != GSO_NONE) {
            int count = cut_tcp(vnet, frame, len, d->cut, sizeof d->cut, d->cut_sizes, CUT_MAX);
            if (count < 0) { /* (not with the offloads asked for: dropped, counted) */
                d->bad_offloads++;
                continue;
            }
            size_t at = 0;
            for (int i = 0; i < count; at += d->cut_sizes[i], i++)
                tap_frame(d, local, d->cut + at, d->cut_sizes[i], now);
            continue;
        }
        if (vnet[0] & VIRTIO_NEEDS_CSUM) {
            uint16_t start, offset;
            memcpy(&start, vnet + 6, 2);
            memcpy(&offset, vnet + 8, 2);
            if (complete_csum(frame, len, start, offset) != 0) {
                d->bad_offloads++;
                continue;
            }
        }
        tap_frame(d, local, frame, len, now);
    }
    flush_run(d, now);
    return 0;
}

/* ---- the UDP socket ------------------------------------------------------------------ */

static void heard(channel *c, double now)
{
    c->heard = now;
    c->fresh_until = now + c->fresh_for;
    c->heard_dirty = 1;
}

/* The payload of a transport datagram from sealed channel c, opened into out: its length,
 * or -1 if C does not open it (not a transport message, not of a session Python gave C or
 * past its time, a replay, a bad tag): Python opens it again, to refuse and count it. */
static long open_sealed(channel *c, const uint8_t *dg, size_t len, uint8_t *out, double now)
{
    if (len < SEAL_OVERHEAD || dg[0] != SEAL_TRANSPORT || dg[1] || dg[2] || dg[3])
        return -1;
    for (int i = 0; i < RX_SESSIONS; i++) {
        if (c->rx[i].box != NULL && memcmp(c->rx[i].index, dg + 4, 4) == 0 &&
            now < c->rx[i].until) {
            long n = box_open(c->rx[i].box, dg, len, out);
            return n < 0 ? -1 : n;
        }
    }
    return -1;
}

/* Datagrams from the network: frames of cached flows forwarded (to the tap coalesced, to
 * remotes in GSO runs), the rest handed up as read. Reads until EAGAIN or until enough went
 * up: the socket is not handed to Python's handler while C runs. */
static int from_udp(Datapath *d, double now)
{
    int lone = now - d->udp_woke >= LONE_GAP; /* (as from_tap's) */
    d->udp_woke = now;
    for (int n = 0; n < BATCH && d->nups < UP_SOFT && d->upused < UPBUF / 2; n++) {
        if (n == 1 && lone)
            flush_all(d, now);
        struct sockaddr_storage sa;
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {d->buf, RECV_SIZE};
        struct msghdr msg = {.msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = &iov,
                             .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = sizeof ctl.buf};
        ssize_t got = recvmsg(d->udpfd, &msg, 0);
        if (got < 0) {
            int e = errno;
            flush_all(d, now);
            if (e == EAGAIN || e == EINTR)
                return 0;
            up(d, 2, NULL, 0, d->buf, 0, e); /* a queued ICMP error: Python counts it */
            continue;
        }
        Py_ssize_t seg = got;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
                c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                int size;
                memcpy(&size, CMSG_DATA(c), sizeof size);
                if (size > 0 && size < got)
                    seg = size;
            }
        }
        addr_key k;
        addr_slot *s = key_of((struct sockaddr *)&sa, &k) == 0 ? addr_slot_of(d, &k, 0) : NULL;
        channel *src = s ? channel_at(d, s->id) : NULL;
        Py_ssize_t at = 0;
        int upped = 0;
        if (src != NULL && now < src->fresh_until) {
            int lifted = 0; /* an opened payload went up: the rest of the batch follows it */
            for (; at < got && !upped; at += seg) {
                const uint8_t *frame = d->buf + at;
                Py_ssize_t len = got - at < seg ? got - at : seg;
                if (src->sealed) {
                    long n = open_sealed(src, frame, (size_t)len, d->opened, now);
                    if (n < 0)
                        break; /* (a handshake, a refusal: Python's, as read) */
                    frame = d->opened;
                    len = n;
                    heard(src, now);
                } else if (len < ETH_HLEN) {
                    break; /* a heartbeat or a runt: Python's */
                }
                flow *f = !lifted && len >= ETH_HLEN ? flow_find(d, s->id, frame) : NULL;
                channel *out = f ? channel_at(d, f->out) : NULL;
                if (out == NULL ||
                    (!out->local && (len > out->max_frame || !sendable(out, now)))) {
                    if (!src->sealed)
                        break;
                    flush_all(d, now); /* (what came before goes first) */
                    up(d, 4, NULL, 0, frame, len, s->id); /* (a heartbeat too) */
                    lifted = 1;
                    continue;
                }
                if (!src->sealed)
                    heard(src, now);
                if (!out->local) {
                    upped = queue(d, s->id, f->out, f, frame, (size_t)len, now);
                    continue;
                }
                if (tap_add(d, s->id, f, frame, (size_t)len, now)) {
                    upped = 1;
                    at += seg;
                    break;
                }
            }
        }
        if (upped || at < got || got == 0) { /* (an empty datagram is a heartbeat too) */
            flush_all(d, now); /* (what came before goes first) */
            if (at < got || got == 0)
                up(d, 1, &sa, msg.msg_namelen, d->buf + at, got - at, seg > 0 ? seg : 1);
        }
    }
    flush_all(d, now);
    return 0;
}

/* ---- Python's side -------------------------------------------------------------------- */

/* A channel's sessions let go of (its boxes belong to Python's sessions too). */
static void unseal(channel *c)
{
    Py_CLEAR(c->tx);
    for (int i = 0; i < RX_SESSIONS; i++)
        Py_CLEAR(c->rx[i].box);
    c->sealed = 0;
}

static void Datapath_dealloc(Datapath *d)
{
    for (uint32_t id = 0; id < d->nch; id++)
        unseal(&d->ch[id]);
    PyMem_RawFree(d->ch);
    PyMem_RawFree(d->upbuf);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static int Datapath_init(Datapath *d, PyObject *args, PyObject *kw)
{
    static char *names[] = {"epoll_fd", "tap_fd", "udp_fd", "family", NULL};
    d->tapfd = d->udpfd = -1;
    d->tap_id = UINT32_MAX;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiii", names, &d->epfd, &d->tapfd, &d->udpfd,
                                     &d->family))
        return -1;
    if (d->tapfd >= 0 && ioctl(d->tapfd, TUNSETOFFLOAD, (unsigned long)OFFLOADS) == 0)
        d->offloads = 1; /* (else frames come complete, as to the Python datapath) */
    d->upbuf = PyMem_RawMalloc(UPBUF);
    if (d->upbuf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyObject *Datapath_channel(Datapath *d, PyObject *args)
{
    unsigned int id;
    PyObject *addr;
    long max_frame;
    double fresh_for, fresh_until;
    if (!PyArg_ParseTuple(args, "IOldd", &id, &addr, &max_frame, &fresh_for, &fresh_until))
        return NULL;
    if (id >= MAX_CHANNELS) {
        PyErr_SetString(PyExc_ValueError, "channel id out of range");
        return NULL;
    }
    if (id >= d->nch) {
        uint32_t n = d->nch ? d->nch : 16;
        while (n <= id)
            n *= 2;
        channel *grown = PyMem_RawRealloc(d->ch, n * sizeof *grown);
        if (grown == NULL)
            return PyErr_NoMemory();
        memset(grown + d->nch, 0, (n - d->nch) * sizeof *grown);
        d->ch = grown;
        d->nch = n;
    }
    channel *c = &d->ch[id];
    if (!c->used) {
        unseal(c); /* (a channel an error left unused may still hold boxes) */
        memset(c, 0, sizeof *c);
    }
    c->used = 1;
    c->max_frame = max_frame;
    c->fresh_for = fresh_for;
    if (fresh_until > c->fresh_until)
        c->fresh_until = fresh_until;
    if (addr == Py_None) {
        c->local = 1;
        d->tap_id = id;
        Py_RETURN_NONE;
    }
    const char *host;
    int port;
    if (!PyArg_ParseTuple(addr, "si", &host, &port))
        return NULL;
    char service[8];
    snprintf(service, sizeof service, "%d", port & 0xffff);
    struct addrinfo hints = {.ai_family = d->family, .ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, service, &hints, &ai) != 0 || ai == NULL ||
        ai->ai_addrlen > sizeof c->sa) {
        if (ai)
            freeaddrinfo(ai);
        c->used = 0;
        PyErr_Format(PyExc_ValueError, "not a numeric address: %s", host);
        return NULL;
    }
    memcpy(&c->sa, ai->ai_addr, ai->ai_addrlen);
    c->salen = ai->ai_addrlen;
    freeaddrinfo(ai);
    key_of((struct sockaddr *)&c->sa, &c->key);
    addr_slot *s = addr_slot_of(d, &c->key, 1);
    if (s == NULL) {
        c->used = 0;
        PyErr_SetString(PyExc_MemoryError, "address table full");
        return NULL;
    }
    s->used = 1;
    s->key = c->key;
    s->id = id;
    Py_RETURN_NONE;
}

static PyObject *Datapath_forget(Datapath *d, PyObject *args)
{
    unsigned int id;
    if (!PyArg_ParseTuple(args, "I", &id))
        return NULL;
    channel *c = channel_at(d, id);
    if (c != NULL) {
        addr_slot *s = c->local ? NULL : addr_slot_of(d, &c->key, 0);
        if (s != NULL && s->id == id)
            s->used = 2;
        unseal(c);
        c->used = 0;
    }
    Py_RETURN_NONE;
}

/* sessions(id, box or None, usable_until, [(index, box, usable_until)]): channel id is
 * sealed; the session that seals now and those C may open (Python's, confirmed). */
static PyObject *Datapath_sessions(Datapath *d, PyObject *args)
{
    unsigned int id;
    PyObject *tx, *rx;
    double tx_until;
    if (!PyArg_ParseTuple(args, "IOdO!", &id, &tx, &tx_until, &PyList_Type, &rx))
        return NULL;
    if ((tx != Py_None && !PyObject_TypeCheck(tx, &BoxType)) ||
        PyList_GET_SIZE(rx) > RX_SESSIONS) {
        PyErr_SetString(PyExc_ValueError, "want a Box or None, and up to 3 sessions");
        return NULL;
    }
    Box *boxes[RX_SESSIONS] = {NULL};
    uint8_t index[RX_SESSIONS][4];
    double until[RX_SESSIONS];
    Py_ssize_t n = PyList_GET_SIZE(rx);
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *ix;
        Py_ssize_t ixlen;
        PyObject *box;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(rx, i), "y#O!d", &ix, &ixlen, &BoxType, &box,
                              &until[i]))
            return NULL;
        if (ixlen != 4) {
            PyErr_SetString(PyExc_ValueError, "a session index is 4 bytes");
            return NULL;
        }
        memcpy(index[i], ix, 4);
        boxes[i] = (Box *)box;
    }
    channel *c = channel_at(d, id); /* (after parsing, which may run Python code) */
    if (c == NULL || c->local) {
        PyErr_SetString(PyExc_ValueError, "want a remote channel's id");
        return NULL;
    }
    unseal(c);
    c->sealed = 1;
    c->tx = tx == Py_None ? NULL : (Box *)tx;
    Py_XINCREF(c->tx);
    c->tx_until = tx_until;
    for (Py_ssize_t i = 0; i < n; i++) {
        memcpy(c->rx[i].index, index[i], 4);
        c->rx[i].box = boxes[i];
        Py_INCREF(boxes[i]);
        c->rx[i].until = until[i];
    }
    Py_RETURN_NONE;
}

static PyObject *Datapath_flow(Datapath *d, PyObject *args)
{
    unsigned int src, out;
    Py_buffer hdr;
    unsigned long long version;
    if (!PyArg_ParseTuple(args, "Iy*IK", &src, &hdr, &out, &version))
        return NULL;
    if (hdr.len < HDR_KEY || version == 0) {
        PyBuffer_Release(&hdr);
        PyErr_SetString(PyExc_ValueError, "a flow needs 12 bytes of MAC header and a version");
        return NULL;
    }
    flow *f = &d->flows[flow_hash(src, hdr.buf)]; /* (none is dirty: poll() said them) */
    f->version = version;
    f->src = src;
    f->out = out;
    memcpy(f->hdr, hdr.buf, HDR_KEY);
    PyBuffer_Release(&hdr);
    Py_RETURN_NONE;
}

static PyObject *upcalls_of(Datapath *d)
{
    PyObject *list = PyList_New(0);
    for (int i = 0; list && i < d->nups; i++) {
        upcall *u = &d->ups[i];
        PyObject *item = NULL;
        if (u->kind == 0) {
            item = Py_BuildValue("(iy#)", 0, d->upbuf + u->start, u->len);
        } else if (u->kind == 2) {
            item = Py_BuildValue("(in)", 2, u->seg);
        } else if (u->kind == 3 || u->kind == 4) {
            item = Py_BuildValue("(iy#n)", u->kind, d->upbuf + u->start, u->len, u->seg);
        } else if (u->kind == 5) {
            item = Py_BuildValue("(iy#nI)", 5, d->upbuf + u->start, u->len, u->seg, u->out);
        } else {
            char host[NI_MAXHOST];
            int port = 0;
            if (getnameinfo((struct sockaddr *)&u->sa, u->salen, host, sizeof host, NULL, 0,
                            NI_NUMERICHOST) != 0)
                strcpy(host, "?");
            if (u->sa.ss_family == AF_INET)
                port = ntohs(((struct sockaddr_in *)&u->sa)->sin_port);
            else if (u->sa.ss_family == AF_INET6)
                port = ntohs(((struct sockaddr_in6 *)&u->sa)->sin6_port);
            PyObject *segs = PyList_New(0);
            if (segs && u->len == 0) { /* one empty datagram */
                PyObject *b = PyBytes_FromStringAndSize(NULL, 0);
                if (b == NULL || PyList_Append(segs, b) < 0)
                    Py_CLEAR(segs);
                Py_XDECREF(b);
            }
            for (Py_ssize_t at = 0; segs && at < u->len; at += u->seg) {
                Py_ssize_t n = u->len - at < u->seg ? u->len - at : u->seg;
                PyObject *b = PyBytes_FromStringAndSize((char *)d->upbuf + u->start + at, n);
                if (b == NULL || PyList_Append(segs, b) < 0)
                    Py_CLEAR(segs);
                Py_XDECREF(b);
            }
            if (segs)
                item = Py_BuildValue("(iN(si))", 1, segs, host, port);
        }
        if (item == NULL || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    d->nups = 0;
    d->upused = 0;
    return list;
}

static PyObject *touched_of(Datapath *d)
{
    PyObject *hits = PyList_New(0), *heard = PyList_New(0);
    for (uint32_t i = 0; hits && i < d->ndirty; i++) {
        flow *f = &d->flows[d->dirty_flows[i]];
        f->dirty = 0;
        PyObject *t = Py_BuildValue("(Iy#d)", f->src, f->hdr + 6, (Py_ssize_t)6, f->hit);
        if (t == NULL || PyList_Append(hits, t) < 0)
            Py_CLEAR(hits);
        Py_XDECREF(t);
    }
    d->ndirty = 0;
    for (uint32_t id = 0; heard && id < d->nch; id++) {
        channel *c = &d->ch[id];
        if (!c->used || !(c->heard_dirty || c->said_dirty))
            continue;
        PyObject *t = Py_BuildValue("(Idd)", id, c->heard_dirty ? c->heard : -1.0,
                                    c->said_dirty ? c->said : -1.0);
        c->heard_dirty = c->said_dirty = 0;
        if (t == NULL || PyList_Append(heard, t) < 0)
            Py_CLEAR(heard);
        Py_XDECREF(t);
    }
    if (hits == NULL || heard == NULL) {
        Py_XDECREF(hits);
        Py_XDECREF(heard);
        return NULL;
    }
    return Py_BuildValue("(NN)", hits, heard);
}

/* poll(timeout, version): wait up to timeout seconds; forward what flows cover.
 * Returns (fds for Python's handlers, upcalls, flows hit, channels heard). */
static PyObject *Datapath_poll(Datapath *d, PyObject *args)
{
    double timeout;
    unsigned long long version;
    if (!PyArg_ParseTuple(args, "dK", &timeout, &version))
        return NULL;
    d->version = version;
    d->nready = 0;
    struct epoll_event ev[MAX_EVENTS];
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    double deadline = now_s() + timeout;
    for (;;) {
        double left = deadline - now_s();
        int ms = left <= 0 ? 0 : (int)(left * 1000.0 + 0.999);
        int n = epoll_wait(d->epfd, ev, MAX_EVENTS, ms);
        if (n < 0) {
            failed = errno == EINTR ? 0 : errno; /* EINTR: a signal, for Python's handler */
            break;
        }
        double now = now_s();
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            int give = 1;
            if (fd == d->tapfd)
                give = from_tap(d, d->tap_id, now);
            else if (fd == d->udpfd)
                give = from_udp(d, now);
            if (give)
                mark_ready(d, fd);
        }
        if (d->nready || d->nups || n == 0 || now >= deadline)
            break;
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        errno = failed;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *ready = PyList_New(d->nready);
    for (int i = 0; ready && i < d->nready; i++)
        PyList_SET_ITEM(ready, i, PyLong_FromLong(d->ready[i]));
    PyObject *ups = upcalls_of(d);
    PyObject *touched = touched_of(d);
    if (ready == NULL || ups == NULL || touched == NULL) {
        Py_XDECREF(ready);
        Py_XDECREF(ups);
        Py_XDECREF(touched);
        return NULL;
    }
    PyObject *hits = PyTuple_GET_ITEM(touched, 0), *heard = PyTuple_GET_ITEM(touched, 1);
    PyObject *out = Py_BuildValue("(NNOO)", ready, ups, hits, heard);
    Py_DECREF(touched);
    return out;
}

static PyObject *Datapath_take_counters(Datapath *d, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(0);
    for (uint32_t id = 0; list && id < d->nch; id++) {
        channel *c = &d->ch[id];
        if (!c->used || !c->counted)
            continue;
        PyObject *t = Py_BuildValue("(IKKKK)", id, c->rx_frames, c->rx_bytes, c->tx_frames,
                                    c->tx_bytes);
        if (t == NULL || PyList_Append(list, t) < 0)
            Py_CLEAR(list);
        Py_XDECREF(t);
        c->rx_frames = c->rx_bytes = c->tx_frames = c->tx_bytes = 0;
        c->counted = 0;
    }
    return list;
}

static PyObject *Datapath_stop(Datapath *d, PyObject *Py_UNUSED(ignored))
{
    if (d->offloads && d->tapfd >= 0)
        ioctl(d->tapfd, TUNSETOFFLOAD, 0UL); /* frames complete again, for Python */
    d->offloads = 0;
    d->tapfd = d->udpfd = -1;
    Py_RETURN_NONE;
}

static PyMethodDef Datapath_methods[] = {
    {"stop", (PyCFunction)Datapath_stop, METH_NOARGS,
     "stop(): the tap without offloads again; this datapath does nothing more"},
    {"channel", (PyCFunction)Datapath_channel, METH_VARARGS,
     "channel(id, addr or None, max_frame, fresh_for, fresh_until): add or update one"},
    {"forget", (PyCFunction)Datapath_forget, METH_VARARGS, "forget(id): a channel gone"},
    {"sessions", (PyCFunction)Datapath_sessions, METH_VARARGS,
     "sessions(id, box or None, usable_until, [(index, box, usable_until)]): sealed"},
    {"flow", (PyCFunction)Datapath_flow, METH_VARARGS,
     "flow(src, mac_header, out, version): cache a forwarding decision"},
    {"poll", (PyCFunction)Datapath_poll, METH_VARARGS,
     "poll(timeout, version): (ready fds, upcalls, flows hit, channels heard)"},
    {"take_counters", (PyCFunction)Datapath_take_counters, METH_NOARGS,
     "[(id, rx_frames, rx_bytes, tx_frames, tx_bytes)] since the last call"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DatapathType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rrqctl.engine._fastpath.Datapath",
    .tp_basicsize = sizeof(Datapath),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The datapath's common case: cached flows forwarded in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Datapath_init,
    .tp_dealloc = (destructor)Datapath_dealloc,
    .tp_methods = Datapath_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath", "rrqctl's datapath in C (see fastpath.py)", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastpath(void)
{
    if (PyType_Ready(&DatapathType) < 0 || PyType_Ready(&BoxType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&DatapathType);
    if (PyModule_AddObject(m, "Datapath", (PyObject *)&DatapathType) < 0) {
        Py_DECREF(&DatapathType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&BoxType);
    if (PyModule_AddObject(m, "Box", (PyObject *)&BoxType) < 0) {
        Py_DECREF(&BoxType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
