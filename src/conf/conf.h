/* conf/conf.h - the contract of the configuration: named lists, compiled ACLs, routes and options,
 * loaded once and immutable after.  May include: core, smtp. */
#ifndef TANDEM_CONF_H
#define TANDEM_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/core.h"

/* ---- list: Exim-style colon-separated lists: domains, hosts, addresses; named lists. */

enum list_kind { LIST_DOMAIN, LIST_HOST, LIST_ADDRESS, LIST_LOCAL_PART };

enum list_item_type {
    ITEM_ANY,      /* "*" */
    ITEM_LITERAL,  /* exact, case-insensitive (domains, host names, addresses) */
    ITEM_SUFFIX,   /* "*.example.org": any subdomain; for addresses "*@domain" / "user@*" forms */
    ITEM_CIDR,     /* IPv4/IPv6 address or network (host lists only) */
    ITEM_NAMED,    /* "+name": refers to a named list of the same kind */
    ITEM_LOOKUP,   /* "lsearch;/path", "cdb;/path" (host lists also "net-", "netN-") */
};

struct named_list;
struct lookup;        /* a lookup file, private to conf (lookup_int.h) */
struct lookup_set;    /* the lookup files of one configuration */

/* Host-list lookups: keyed by the verified host name, by the client's IP address ("net-"),
 * or by its network "addr/N" ("netN-", N >= 0). */
#define LOOKUP_BY_NAME (-1)
#define LOOKUP_BY_IP (-2)

struct list_item {
    enum list_item_type type;
    bool negate;
    char *text;                   /* the item as written (without '!') */
    uint8_t addr[16];             /* ITEM_CIDR: network, IPv4 as ::ffff:a.b.c.d */
    unsigned prefix;              /* ITEM_CIDR: prefix length in the 128-bit space */
    const struct named_list *ref; /* ITEM_NAMED */
    struct lookup *lookup;        /* ITEM_LOOKUP: shared through the conf's lookup set */
    bool lookup_owned;            /* ITEM_LOOKUP parsed without a set: freed with the list */
    int lookup_net;               /* ITEM_LOOKUP in a host list: LOOKUP_BY_NAME, _BY_IP or N */
};

struct list {
    enum list_kind kind;
    struct list_item *items;
    size_t n;
};

struct named_list {
    char *name;
    struct list list;
    int line;
};

/* Parse "a : !b : +name" into l.  Named references are resolved against the given named
 * lists (which must be of the same kind).  On error returns false with a message in err. */
bool list_parse(struct list *l, enum list_kind kind, const char *text,
                const struct named_list *named, size_t nnamed, char *err, size_t errsz);
void list_free(struct list *l);

/* The named lists a list may refer to, by kind: an address list's "+name" is a named address
 * list, but its "user@+name" / "*@+name" is a named domain list (as in Exim).  Local part
 * lists have no named lists.  Any pointer may be NULL with its count 0. */
struct list_names {
    const struct named_list *domains, *hosts, *addresses;
    size_t ndomains, nhosts, naddresses;
    struct lookup_set *lookups;   /* where lookup items share their files; NULL: one each */
    int line;                     /* the configuration line, for lookups' messages */
};
bool list_parse_names(struct list *l, enum list_kind kind, const char *text,
                      const struct list_names *names, char *err, size_t errsz);

/* Check that named lists never refer to themselves, directly or not, and that chains of
 * references are at most 16 deep; on failure *bad_list is one list on the loop. */
bool list_names_check(const struct list_names *names, const struct named_list **bad_list);

/* Matching, Exim semantics: items are tried in order and the first that matches decides
 * (a negated item that matches means "no match"); no item matching means "no match",
 * except that a list whose last item is negated behaves as if followed by "*".
 * A lookup item whose file is missing, unreadable or corrupt makes the whole check DEFER
 * (unless an earlier item decided): the caller must treat that as a temporary failure, never
 * as a match or a non-match.  On LIST_DEFER, *why (when why is not NULL) says which lookup
 * failed and how ("lsearch;/path: cannot open: ..."), valid until the next check.
 * Hosts: ip NULL or "" means no remote host (only "" and "*" match); hostname is the
 * verified reverse-DNS name, NULL if unknown (name patterns then do not match).
 * Addresses: "" is the null sender, matched only by an empty item; a lookup is keyed by the
 * whole address, then by "*@domain". */
enum list_result { LIST_NO_MATCH, LIST_MATCH, LIST_DEFER };
const char *list_result_name(enum list_result r);
enum list_result list_check_domain(const struct list *l, const char *domain, const char **why);
enum list_result list_check_host(const struct list *l, const char *ip, const char *hostname,
                                 const char **why);
enum list_result list_check_address(const struct list *l, const char *address, const char **why);
enum list_result list_check_local_part(const struct list *l, const char *local_part,
                                       const char **why);
/* Does a host list have host-name items (which need the client's reverse-DNS name)? */
bool list_has_host_names(const struct list *l);

/* ---- acl: access control lists in their compiled form, built by the config parser
 * (evaluation: policy/policy.h). */

enum acl_stage { ACL_CONNECT, ACL_HELO, ACL_MAIL, ACL_RCPT, ACL_PREDATA, ACL_DATA, ACL_NSTAGES };
enum acl_verb { VERB_ACCEPT, VERB_DENY, VERB_DEFER, VERB_DISCARD, VERB_DROP, VERB_REQUIRE, VERB_WARN };

/* The variables text may use; nothing else is ever evaluated.  The second group is set by
 * the policy conditions (dnslists, ratelimit, spam) and by TLS. */
enum acl_var {
    VAR_LOCAL_PART, VAR_DOMAIN, VAR_SENDER_ADDRESS, VAR_SENDER_HOST_ADDRESS,
    VAR_SENDER_HELO_NAME, VAR_PRIMARY_HOSTNAME, VAR_MESSAGE_ID, VAR_ACL_VERIFY_MESSAGE,
    VAR_TLS_IN_CIPHER, VAR_DNSLIST_DOMAIN, VAR_DNSLIST_MATCHED, VAR_DNSLIST_VALUE,
    VAR_DNSLIST_TEXT, VAR_SENDER_RATE, VAR_SENDER_RATE_LIMIT, VAR_SENDER_RATE_PERIOD,
    VAR_SPAM_SCORE, VAR_SPAM_SCORE_INT, VAR_SPAM_BAR, VAR_SPAM_ACTION, VAR_SPAM_REPORT,
    VAR_NVARS
};

/* Text with $variables, split at load time into literal and variable segments. */
struct acl_text_seg {
    bool is_var;
    enum acl_var var;
    char *literal;
};
struct acl_text {
    struct acl_text_seg *segs;
    size_t n;
};

enum verify_what { VERIFY_HELO, VERIFY_SENDER, VERIFY_RECIPIENT };

struct callout_opts {
    bool enabled;
    unsigned timeout;  /* seconds, 0 = callout_timeout */
    bool defer_ok, use_sender, use_postmaster, random, no_cache;
};

enum cut_defer { CUT_DEFER_SPOOL = 0, CUT_DEFER_PASS };
enum cut_split { CUT_SPLIT_DEFER = 0, CUT_SPLIT_SPOOL };
/* A recipient the next hop cannot answer for and nothing local knows: accept and spool it
 * (Exim's behaviour), or 451 4.4.1. */
enum cut_unknown { CUT_UNKNOWN_ACCEPT = 0, CUT_UNKNOWN_DEFER };
struct cutthrough_opts {
    enum cut_defer defer;
    enum cut_split split;
    enum cut_unknown unknown;
};

/* dnslists = zone[=values] : ... (conf_dnsl.c).  An item's returned addresses must match its
 * values: '=' any equal (or inside a net), '&' bit masks; '==' / '=&' every address must match;
 * a leading '!' inverts that test.  Unknown (timeout, SERVFAIL) is "not listed" unless a
 * +include_unknown or +defer_unknown item came before. */
enum dnsl_unknown { DNSL_EXCLUDE_UNKNOWN = 0, DNSL_INCLUDE_UNKNOWN, DNSL_DEFER_UNKNOWN };
enum dnsl_match { DNSL_ANY_RECORD = 0, DNSL_EQUAL, DNSL_BITS };
struct dnsl_value {
    uint32_t addr;               /* host order */
    unsigned prefix;             /* DNSL_EQUAL: 32 for an address, less for a net */
};
struct dnsl_zone {
    char *zone;                  /* lower case, no trailing dot */
    enum dnsl_match match;
    bool all, invert;            /* '==' or '=&'; '!=', '!&', ... */
    struct dnsl_value *vals;
    size_t nvals;
    enum dnsl_unknown unknown;   /* the +..._unknown item in force for this zone */
};
struct dnsl_spec {
    struct dnsl_zone *zones;
    size_t n;
};
#define DNSL_ZONES_MAX 32       /* zones in one dnslists condition */
#define DNSL_VALUES_MAX 32      /* values after one zone's '=' */

/* Parse a dnslists value into spec; false with a message in err. */
bool dnsl_parse(struct dnsl_spec *spec, const char *text, char *err, size_t errsz);
void dnsl_free(struct dnsl_spec *spec);
/* Do the addresses a zone returned (host order, n > 0) satisfy its values? */
bool dnsl_values_match(const struct dnsl_zone *z, const uint32_t *addrs, size_t n);

/* ratelimit = LIMIT / PERIOD / [options] / [KEY] (conf_ratelimit.c), Exim's syntax. */
enum rate_per { RATE_PER_MAIL = 0, RATE_PER_CONN, RATE_PER_RCPT, RATE_PER_BYTE, RATE_PER_CMD };
enum rate_mode { RATE_LEAKY = 0, RATE_STRICT, RATE_READONLY };
struct ratelimit_spec {
    double limit;                /* LIMIT (K, M, G multiply by 1024...) */
    char *limit_text, *period_text; /* as written, for $sender_rate_limit/_period and the key */
    unsigned period;             /* seconds, > 0 */
    enum rate_per per;
    enum rate_mode mode;
    bool mode_given;             /* leaky or strict was written */
    bool count_given;
    double count;                /* count=N */
    struct acl_text key;         /* no segments: $sender_host_address */
};
bool ratelimit_parse(struct ratelimit_spec *spec, const char *text, char *err, size_t errsz);
void ratelimit_free(struct ratelimit_spec *spec);
const char *rate_per_name(enum rate_per p);
/* Can the per_* option add to the rate in this stage's ACL?  If not, the condition only reads
 * the stored rate (leaky or strict there is a configuration error). */
bool ratelimit_counts_in(enum rate_per per, enum acl_stage stage);

/* spam = NAME[:true][/defer_ok] (data ACL only). */
struct spam_spec {
    char *name;                  /* for the log only (rspamd has no per-user profiles here) */
    bool always_true;            /* ":true": the condition only sets the variables */
    bool defer_ok;               /* scanner down or too slow: the condition is false, not defer */
};

enum acl_item_kind {
    COND_HOSTS, COND_DOMAINS, COND_LOCAL_PARTS, COND_SENDERS, COND_RECIPIENTS, COND_VERIFY,
    COND_DNSLISTS, COND_RATELIMIT, COND_SPAM, COND_ENCRYPTED,
    MOD_MESSAGE, MOD_LOG_MESSAGE, MOD_LOGWRITE, MOD_ADD_HEADER, MOD_DELAY, MOD_CONTROL,
};

struct acl_item {
    enum acl_item_kind kind;
    bool negate;                 /* conditions only: "!domains = ..." */
    struct list list;            /* COND_HOSTS .. COND_RECIPIENTS, COND_ENCRYPTED */
    enum verify_what verify;     /* COND_VERIFY */
    struct callout_opts callout; /* COND_VERIFY */
    struct acl_text text;        /* MOD_MESSAGE, MOD_LOG_MESSAGE, MOD_LOGWRITE, MOD_ADD_HEADER */
    unsigned delay;              /* MOD_DELAY, seconds */
    struct cutthrough_opts cut;  /* MOD_CONTROL (control = cutthrough_delivery/...) */
    struct dnsl_spec dnsl;       /* COND_DNSLISTS */
    struct ratelimit_spec rate;  /* COND_RATELIMIT */
    struct spam_spec spam;       /* COND_SPAM */
    int line;
};

struct acl_stmt {
    enum acl_verb verb;
    struct acl_item *items;
    size_t n;
    int line;
};

struct acl {
    char *name;
    struct acl_stmt *stmts;
    size_t n;
    int line;
};

/* Free what acl holds (its name, statements, lists, texts), not acl itself. */
void acl_free(struct acl *acl);

/* ---- acl_text: ACL text with $variables: split into segments when the configuration is
 * loaded, expanded (never evaluated further) when an ACL runs.  Private to conf and acl. */

/* Compile s ("$var", "${var}", "\$" for a dollar) into t; false with a message in err. */
bool acl_text_compile(struct acl_text *t, const char *s, char *err, size_t errsz);
void acl_text_free(struct acl_text *t);
/* Append t to out with variable values from vals (NULL = empty); control characters in
 * values become '?', so a value can never split a reply or header line. */
void acl_text_expand(const struct acl_text *t, const char *const vals[VAR_NVARS], struct sbuf *out);

/* ---- conf: the parsed, validated configuration.  Immutable once loaded. */

/* Outbound TLS.  TLS_DANE is a policy, not an engine setting: per next hop it becomes DANE
 * authentication (secure TLSA records), else the domain's MTA-STS policy, else `may`
 * (outbound/outbound.h: tls_policy). */
enum tls_policy { TLS_UNSET = 0, TLS_NONE, TLS_MAY, TLS_ENCRYPT, TLS_VERIFY, TLS_DANE };
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
    unsigned callout_max_per_host;    /* [20] connections to one next hop at once, for the whole
                                         daemon: callouts, cutthrough, deliveries, pooled */
    unsigned onward_pool_size;        /* [20] idle onward connections kept per next hop; 0 none */
    unsigned onward_pool_idle;        /* [30s] how long an idle onward connection is kept */
    unsigned connect_timeout;         /* [30s] outbound TCP connect */
    unsigned data_timeout;            /* [5m] outbound per data block and final dot */
    unsigned shutdown_timeout;        /* [30s] graceful stop before sessions are cut */

    /* Scale-out and operations (CONFIG.md additions). */
    struct list hosts_proxy;          /* must send a PROXY header first (HAProxy) */
    struct listen_addr *metrics_listen; /* Prometheus /metrics; NULL = not served */
    char *transaction_log;            /* JSON lines, one per transaction; NULL = none */
    char *hints_backend;              /* "lmdb" (the only backend so far) */

    /* Edge policy (CONFIG.md additions; doc/config.md). */
    struct spamd_addr {
        char *host;                   /* numeric IP; NULL = spamd_address not set */
        uint16_t port;
        unsigned tmo;                 /* [2m] tmo=: the scan's verdict after end of data */
    } spamd;
    unsigned dnslist_timeout;         /* [5s] a DNS list lookup not answered by then is
                                         "not listed" (logged) */

    /* ACL names per stage (as written) and the ACLs they resolve to (NULL = none). */
    char *acl_names[ACL_NSTAGES];
    const struct acl *acl_for_stage[ACL_NSTAGES];

    struct named_list *domainlists, *hostlists, *addresslists;
    size_t ndomainlists, nhostlists, naddresslists;
    struct route *routes;
    size_t nroutes;
    struct acl *acls;
    size_t nacls;
    struct lookup_set *lookups;   /* the lookup files the lists name (state per process) */
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
/* The first route whose pattern matches domain (*r NULL: none); LIST_DEFER when a lookup in
 * a pattern failed before a route matched (a temporary routing failure; *why says why). */
enum list_result conf_route_find(const struct conf *c, const char *domain,
                                 const struct route **r, const char **why);
const char *tls_policy_name(enum tls_policy p);
/* Does any host list the sessions consult name hosts (so a reverse-DNS lookup is needed)? */
bool conf_needs_host_names(const struct conf *c);
/* Load every lookup file now, in a process about to serve (after dropping privileges, so
 * that what cannot be read is found and logged at once). */
void conf_lookups_open(const struct conf *c);
/* For check-config: "FILE:LINE: warning: ..." lines in out for lookup files that are
 * missing, unreadable or corrupt now (they would make their conditions defer). */
void conf_lookups_check(const struct conf *c, struct sbuf *out);

#endif
