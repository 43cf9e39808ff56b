/* main.c - command line dispatch (placeholder until the daemon lands). */
#include <stdio.h>
#include <string.h>

#include "util.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("tandem %s\n", TANDEM_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: tandem serve|check-config|session|route|queue|callout-cache|version\n");
    return 64;
}
