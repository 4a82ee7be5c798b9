
/*
 * device-auth: the command-line tool of ngx_device_auth_module.  Each
 * subcommand is one file (device_auth_cli_<name>.c) and one line of the
 * table in device_auth_cli.c.
 *
 * Exit status, the same for every subcommand: 0 all is well, 1 something
 * checked did not pass (an invalid certificate, a rejected manifest
 * entry), 2 the command could not do its work (usage, files, pins, Redis).
 */


#ifndef _DEVICE_AUTH_CLI_H_INCLUDED_
#define _DEVICE_AUTH_CLI_H_INCLUDED_


#include <stdio.h>


#define DEVICE_AUTH_CLI_OK        0
#define DEVICE_AUTH_CLI_FAILED    1
#define DEVICE_AUTH_CLI_ERROR     2


typedef struct {
    const char   *name;
    const char   *usage;       /* the arguments, for "device-auth help" */
    const char   *summary;
    int         (*run)(int argc, char **argv);
} device_auth_cli_command_t;


int device_auth_cli_check(int argc, char **argv);
int device_auth_cli_import(int argc, char **argv);
int device_auth_cli_show(int argc, char **argv);

int device_auth_cli_usage(const char *name);
void device_auth_cli_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int device_auth_cli_number(const char *s, long min, long max, long *n);
int device_auth_cli_serial(const char *arg, char *serial);
void device_auth_cli_print(FILE *f, const char *s, size_t len);
double device_auth_cli_now(void);


#endif /* _DEVICE_AUTH_CLI_H_INCLUDED_ */
