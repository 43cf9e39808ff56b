/* cli_callout.h - `tandem callout-cache list | purge [DOMAIN]`. */
#ifndef TANDEM_CLI_CALLOUT_H
#define TANDEM_CLI_CALLOUT_H

int cli_callout_cache(const char *conf_path, int argc, char **argv);

#endif
