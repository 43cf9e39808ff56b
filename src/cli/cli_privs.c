/* cli_privs.c - the command-line tools that touch the spool, started as root with `user` set,
 * do that as the user, as the daemon's children do (the model of Postfix's postqueue and
 * postsuper): whatever they create there is the daemon's to read, and nothing the user
 * planted there (a symbolic link, a FIFO, a hard link) is opened with root's rights. */
#include "cli.h"

#include <stdio.h>

#include "conf/conf.h"
#include "core/core.h"

bool cli_become_user(const struct conf *c)
{
    struct privs p;
    char err[256];
    if (!privs_lookup(c->user, &p, err, sizeof(err))) {
        fprintf(stderr, "tandem: %s\n", err);
        return false;
    }
    privs_drop(&p);
    return true;
}
