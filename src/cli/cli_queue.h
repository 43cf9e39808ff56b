/* cli_queue.h - `tandem queue [-c FILE] list [--count] | show [--raw] ID | deliver ID |
 * deliver-all | remove ID`. */
#ifndef TANDEM_CLI_QUEUE_H
#define TANDEM_CLI_QUEUE_H

/* argv[0] is "queue"; conf_path is the configuration used unless -c is given.  Returns the
 * exit status. */
int cli_queue(const char *conf_path, int argc, char **argv);

#endif
