/* route_print.h - print a routing result for people (tandem route) and tests. */
#ifndef TANDEM_ROUTE_PRINT_H
#define TANDEM_ROUTE_PRINT_H

#include <stdio.h>

#include "route.h"

/* "  status: ok, N next hops" then "  host NAME [IP] port=P pref=N tls=POLICY" lines, or
 * "  status: NAME (CODE ECODE text)". */
void route_result_print(FILE *f, const struct route_result *res);

#endif
