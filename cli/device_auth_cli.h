
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


#include <stddef.h>
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
int device_auth_cli_revoke(int argc, char **argv);
int device_auth_cli_unrevoke(int argc, char **argv);
int device_auth_cli_quarantine(int argc, char **argv);
int device_auth_cli_release(int argc, char **argv);
int device_auth_cli_registry(int argc, char **argv);
int device_auth_cli_unregister(int argc, char **argv);
int device_auth_cli_list(int argc, char **argv);
int device_auth_cli_lint(int argc, char **argv);
int device_auth_cli_pins(int argc, char **argv);
int device_auth_cli_count(int argc, char **argv);

int device_auth_cli_usage(const char *name);
void device_auth_cli_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int device_auth_cli_number(const char *s, long min, long max, long *n);
int device_auth_cli_serial(const char *arg, char *serial);
int device_auth_cli_serial_profile(const char *arg, int profile,
    char *serial);
int device_auth_cli_signer_id(const char *arg, char *id);
int device_auth_cli_seconds(const char *s, long long max, long long *sec);
void device_auth_cli_duration(char *buf, size_t size, long long ms);
void device_auth_cli_date(long long ms, char *buf, size_t size);
void device_auth_cli_print(FILE *f, const char *s, size_t len);
double device_auth_cli_now(void);


#endif /* _DEVICE_AUTH_CLI_H_INCLUDED_ */
