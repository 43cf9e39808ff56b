/* fuzz_proxy.c - libFuzzer target for the PROXY protocol header parser (in/proxy_hdr.c).
 * Input: byte 0 seeds the chunk sizes, the rest is what a load balancer sends.  Properties:
 * fed in chunks the way proxy_in.c reads (never past proxy_read_limit, a v1 line stopping at
 * its LF), the parser reaches the same verdict as on the whole input at once; a header it
 * accepts is no longer than what was fed and within the bounds; addresses are IPv4 or IPv6. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/core.h"
#include "in/in.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t next_chunk(uint32_t *seed)
{
    *seed ^= *seed << 13;
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;
    return 1 + *seed % 40;
}

/* check_hdr - an accepted header is within its version's bounds */
static void check_hdr(const struct proxy_hdr *h, size_t fed)
{
    if (h->len == 0 || h->len > fed || (h->version != 1 && h->version != 2))
        abort();
    if (h->version == 1 && h->len > PROXY_V1_MAX)
        abort();
    if (h->version == 2 && h->len > PROXY_V2_MAX)
        abort();
    if (!h->local && h->src.ss_family != AF_INET && h->src.ss_family != AF_INET6)
        abort();
    if (!h->local && h->src.ss_family != h->dst.ss_family)
        abort();
}

/* feed_chunked - read like proxy_in.c does; returns the verdict and what was consumed */
static enum proxy_result feed_chunked(const uint8_t *in, size_t n, uint32_t seed,
                                      struct proxy_hdr *h, size_t *consumed)
{
    uint8_t buf[PROXY_V2_MAX];
    size_t have = 0, pos = 0;
    const char *why;
    enum proxy_result r = PROXY_NEED_MORE;
    while (pos < n) {
        size_t room = proxy_read_limit(buf, have);
        if (room > sizeof(buf) - have)
            room = sizeof(buf) - have;
        if (room == 0) {
            r = PROXY_BAD;
            break;
        }
        size_t take = next_chunk(&seed);
        if (take > room)
            take = room;
        if (take > n - pos)
            take = n - pos;
        memcpy(buf + have, in + pos, take);
        if (buf[0] == 'P') {
            const uint8_t *lf = memchr(buf + have, '\n', take);
            if (lf)
                take = (size_t)(lf - (buf + have)) + 1;
        }
        have += take;
        pos += take;
        r = proxy_parse(buf, have, h, &why);
        if (r == PROXY_BAD && why == NULL)
            abort();
        if (r != PROXY_NEED_MORE)
            break;
    }
    *consumed = have;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_hdr whole, chunked;
    const char *why;
    size_t consumed;
    if (size < 1)
        return 0;
    uint32_t seed = data[0] | 0x100u;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    enum proxy_result r1 = proxy_parse(in, n, &whole, &why);
    if (r1 == PROXY_OK)
        check_hdr(&whole, n);
    enum proxy_result r2 = feed_chunked(in, n, seed, &chunked, &consumed);
    if (r2 == PROXY_OK) {
        check_hdr(&chunked, consumed);
        if (r1 != PROXY_OK || whole.len != chunked.len || whole.version != chunked.version ||
            whole.local != chunked.local ||
            memcmp(&whole.src, &chunked.src, sizeof(whole.src)) != 0)
            abort();     /* the chunking must not change an accepted header */
    }
    if (r1 == PROXY_OK && r2 == PROXY_BAD)
        abort();         /* a header valid as a whole is valid however it arrives */
    (void)proxy_looks_like_header(in, n);
    return 0;
}
