/* privs.c - least privilege: children give up root right after fork. */
#include "core.h"

#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>


bool privs_lookup(const char *user, struct privs *p, char *err, size_t errsz)
{
    memset(p, 0, sizeof(*p));
    if (user == NULL || geteuid() != 0)
        return true;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        str_fmt(err, errsz, "user \"%s\" does not exist", user);
        return false;
    }
    p->drop = true;
    p->uid = pw->pw_uid;
    p->gid = pw->pw_gid;
    str_copy(p->name, user, sizeof(p->name));
    return true;
}

void privs_drop(const struct privs *p)
{
    if (!p->drop)
        return;
    if (setgroups(1, &p->gid) != 0 || setresgid(p->gid, p->gid, p->gid) != 0 ||
        setresuid(p->uid, p->uid, p->uid) != 0)
        fatal("cannot drop privileges to %s", p->name);
    if (setuid(0) == 0)
        fatalx("privileges were not dropped");
}
