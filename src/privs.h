/* privs.h - the unprivileged identity children run as. */
#ifndef TANDEM_PRIVS_H
#define TANDEM_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

struct privs {
    bool drop;   /* started as root with `user` set */
    uid_t uid;
    gid_t gid;
    char name[64];
};

/* Resolve `user` (NULL = none).  False with a message if the user does not exist. */
bool privs_lookup(const char *user, struct privs *p, char *err, size_t errsz);
/* Become p's user (no-op unless p->drop); aborts on failure. */
void privs_drop(const struct privs *p);

#endif
