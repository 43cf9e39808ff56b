/* conf.h - the parsed, validated configuration.  Immutable once loaded. */
#ifndef TANDEM_CONF_H
#define TANDEM_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acl.h"
#include "list.h"

enum tls_policy { TLS_UNSET = 0, TLS_NONE, TLS_MAY, TLS_ENCRYPT, TLS_VERIFY };
enum bare_newline { BARE_NEWLINE_REJECT = 0, BARE_NEWLINE_SPACE };

struct listen_addr {
    struct sockaddr_storage ss;
    socklen_t sslen;
    bool implicit_tls; /* "addr:port/tls" */
    char *text;        /* as written */
};

enum hop_kind { HOP_MX, HOP_HOST, HOP_IP };
struct hop_spec {
    enum hop_kind kind;
    char *name;     /* host name, or the IP literal without brackets; NULL for mx */
    uint16_t port;  /* 0 = the route's port= or remote_port */
};

struct route {
    char *pattern;             /* as written: "example.org", "*.x", "+name", "*" */
    struct list domains;       /* the pattern compiled as a one-item domain list */
    struct hop_spec *hops;
    size_t nhops;
    uint16_t port;             /* port=, 0 = unset */
    enum tls_policy tls;       /* tls=, TLS_UNSET = use tls_outbound */
    int line;
};

struct conf {
    char *path;

    char *hostname;
    struct listen_addr *listen;
    size_t nlisten;
    char *spool_directory;
    char *log_directory;  /* "syslog" means syslog */
    char *user;
    unsigned workers;     /* 0 = auto */
    uint64_t message_size_limit;
    unsigned recipients_max;
    unsigned smtp_accept_max;
    unsigned smtp_accept_max_per_host;
    unsigned smtp_receive_timeout;
    char *tls_certificate, *tls_privatekey;
    struct list tls_advertise_hosts;
    char **dns_servers;   /* "127.0.0.1:5353" entries; NULL-terminated; NULL = system */
    char *dnssec_trust_anchor;
    uint16_t remote_port;
    enum tls_policy tls_outbound;
    char *tls_outbound_ca;
    char *helo_data;
    unsigned callout_timeout;
    unsigned cutthrough_data_timeout;
    unsigned callout_cache_positive, callout_cache_negative;
    unsigned *retry_intervals;
    size_t nretry_intervals;
    unsigned retry_give_up;
    struct list chunking_advertise_hosts, dsn_advertise_hosts, pipelining_advertise_hosts;

    /* Extensions to CONFIG.md (documented in doc/config.md). */
    unsigned received_headers_max;    /* [30] more Received: headers = loop, 554 5.4.6 */
    unsigned smtp_line_length_max;    /* [2048] longest command line, CRLF included */
    unsigned smtp_max_errors;         /* [10] bad commands before 421 and close */
    uint64_t smtp_data_min_rate;      /* [256] bytes/s a message must average once it has
                                         taken smtp_receive_timeout; 0 = no minimum */
    enum bare_newline bare_newline;   /* [reject] bare CR or LF in DATA */
    unsigned remote_max_parallel;     /* [20] concurrent outbound deliveries (scheduler) */
    unsigned callout_max_per_host;    /* [5] concurrent callouts to one next hop */
    unsigned connect_timeout;         /* [30s] outbound TCP connect */
    unsigned data_timeout;            /* [5m] outbound per data block and final dot */
    unsigned shutdown_timeout;        /* [30s] graceful stop before sessions are cut */

    /* ACL names per stage (as written) and the ACLs they resolve to (NULL = none). */
    char *acl_names[ACL_NSTAGES];
    const struct acl *acl_for_stage[ACL_NSTAGES];

    struct named_list *domainlists, *hostlists, *addresslists;
    size_t ndomainlists, nhostlists, naddresslists;
    struct route *routes;
    size_t nroutes;
    struct acl *acls;
    size_t nacls;
};

/* Load and validate path.  On failure returns NULL and writes every error found, one per
 * line as "FILE:LINE: message", to errs (which the caller frees with sbuf_free). */
struct conf *conf_load(const char *path, struct sbuf *errs);
void conf_free(struct conf *c);
/* conf_load for the command line: every error goes to stderr; NULL if there was any. */
struct conf *conf_load_or_report(const char *path);

/* Lookups on a loaded configuration. */
const struct named_list *conf_find_list(const struct conf *c, enum list_kind kind, const char *name);
const struct acl *conf_find_acl(const struct conf *c, const char *name);
const struct route *conf_route_for(const struct conf *c, const char *domain);
const char *tls_policy_name(enum tls_policy p);
/* Does any host list the sessions consult name hosts (so a reverse-DNS lookup is needed)? */
bool conf_needs_host_names(const struct conf *c);

#endif
