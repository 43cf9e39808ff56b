/* cli_queue_list.c - `tandem queue list`: like `exim -bp`, one block per message, a line
 * "AGE SIZE ID <sender>" and an indented line per recipient still to be delivered. */
#include "cli_queue_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "core/core.h"
#include "smtp/smtp.h"
#include "store/store.h"

/* print_block - one message */
static void print_block(const struct envelope *env, time_t now)
{
    char age[16], size[16], addr[1024];
    fmt_age(age, sizeof(age), (long)(now - env->arrival));
    fmt_size(size, sizeof(size), env->size);
    str_sanitize(addr, sizeof(addr), env->sender, strlen(env->sender));
    printf("%3s %5s %s <%s>\n", age, size, env->id, addr);
    for (size_t i = 0; i < env->nrcpts; i++) {
        if (env->rcpts[i].state != RCPT_PENDING)
            continue;
        str_sanitize(addr, sizeof(addr), env->rcpts[i].addr, strlen(env->rcpts[i].addr));
        printf("          %s\n", addr);
    }
    printf("\n");
}

int cli_queue_list(const struct cli_ctx *x, bool count)
{
    char **ids;
    size_t n = spool_list(x->conf->spool_directory, &ids);
    time_t now = time(NULL);
    if (count)
        printf("%zu\n", n);
    for (size_t i = 0; i < n && !count; i++) {
        struct envelope env;
        envelope_init(&env);
        if (spool_read_envelope(x->conf->spool_directory, ids[i], &env) == 0)
            print_block(&env, now);
        else if (errno != ENOENT)   /* ENOENT: delivered while we were listing */
            printf("    ?     ? %s *** unreadable: %s ***\n\n", ids[i], strerror(errno));
        envelope_free(&env);
    }
    spool_list_free(ids, n);
    return 0;
}
