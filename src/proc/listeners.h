/* listeners.h - binding the configured listening sockets (done once, by the parent). */
#ifndef TANDEM_LISTENERS_H
#define TANDEM_LISTENERS_H

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct listen_addr;

/* One listening socket (non-blocking, close-on-exec), or -1 with errno. */
int listeners_open_addr(const struct listen_addr *la);

/* Bind and listen on every `listen` address; fds[i] matches conf->listen[i].  On failure
 * closes what was opened and returns false with a message in err. */
bool listeners_open(const struct conf *c, int *fds, char *err, size_t errsz);
void listeners_close(int *fds, size_t n);
/* "127.0.0.1:2525 [::1]:2525" */
void listeners_describe(const struct conf *c, char *buf, size_t sz);

#endif
