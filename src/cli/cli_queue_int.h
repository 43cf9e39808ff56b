/* cli_queue_int.h - the parts of `tandem queue`: listing and showing read the spool;
 * delivering and removing go through the scheduler's control socket, or act on the spool
 * directly (under the same per-message locks) when no daemon runs. */
#ifndef TANDEM_CLI_QUEUE_INT_H
#define TANDEM_CLI_QUEUE_INT_H

#include <stdbool.h>

struct conf;

/* How the command was invoked: who ran it (for `removed by`), and the control connection
 * opened before privileges were dropped (-1 when no daemon answered). */
struct cli_ctx {
    const struct conf *conf;
    char who[64];
    int control_fd;
};

int cli_queue_list(const struct cli_ctx *x, bool count);
int cli_queue_show(const struct cli_ctx *x, const char *id, bool raw);
/* verb is "deliver", "deliver-all" or "remove"; id is NULL for deliver-all. */
int cli_queue_act(const struct cli_ctx *x, const char *verb, const char *id);

#endif
