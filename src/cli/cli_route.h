/* cli_route.h - `tandem route [-c FILE] ADDRESS...` (like exim -bt). */
#ifndef TANDEM_CLI_ROUTE_H
#define TANDEM_CLI_ROUTE_H

/* Route every address and print the result; 0 if all are routable, 2 if not, 1 on a
 * configuration error, 64 on a usage error. */
int cli_route(const char *conf_path, int argc, char **argv);

#endif
