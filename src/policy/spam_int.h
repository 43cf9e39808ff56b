/* spam_int.h - what the scanner's per-process client (spam_client.c: libcurl's multi interface
 * on the event loop) and one scan (spam.c) share. */
#ifndef TANDEM_SPAM_INT_H
#define TANDEM_SPAM_INT_H

#include <curl/curl.h>

#include "policy.h"

struct spam_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;       /* libcurl's timeout */
    char url[128];             /* http://HOST:PORT/checkv2 */
    unsigned tmo;              /* seconds: connecting, a stalled upload, the verdict */
};

/* A transfer of c ended (CURLMSG_DONE): spam.c takes its outcome. */
void spam_scan_transfer_done(struct spam_scan *s, CURLcode rc);

/* Let libcurl act on what is due now (after adding a transfer or resuming one). */
void spam_client_kick(struct spam_client *c);

#endif
