/* envelope.c - construction and destruction of message envelopes. */
#include "smtp.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

void envelope_init(struct envelope *env)
{
    memset(env, 0, sizeof(*env));
}

void envelope_free(struct envelope *env)
{
    for (size_t i = 0; i < env->nrcpts; i++) {
        free(env->rcpts[i].addr);
        free(env->rcpts[i].orcpt);
    }
    free(env->rcpts);
    free(env->sender);
    free(env->client_ip);
    free(env->helo);
    free(env->protocol);
    free(env->tls);
    free(env->envid);
    free(env->message_id);
    free(env->added_headers);
    envelope_init(env);
}

struct rcpt *envelope_add_rcpt(struct envelope *env, const char *addr, unsigned notify,
                               const char *orcpt)
{
    if (env->nrcpts == env->rcpts_cap) {
        env->rcpts_cap = env->rcpts_cap ? env->rcpts_cap * 2 : 4;
        env->rcpts = xreallocarray(env->rcpts, env->rcpts_cap, sizeof(*env->rcpts));
    }
    struct rcpt *r = &env->rcpts[env->nrcpts++];
    memset(r, 0, sizeof(*r));
    r->addr = xstrdup(addr);
    r->notify = notify;
    r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
    return r;
}

void envelope_set(char **field, const char *value)
{
    free(*field);
    *field = value ? xstrdup(value) : NULL;
}
