
/*
 * The throwaway copy of a session that OpenSSL 3.0 decodes while it makes
 * a stateless ticket: its EC key decoded by OpenSSL's built-in EC code
 * rather than the provider decoder, for that one decode (issue 16).
 * Plain C and OpenSSL, as ngx_device_auth_cert.c.
 */


#ifndef _NGX_DEVICE_AUTH_TICKET_H_INCLUDED_
#define _NGX_DEVICE_AUTH_TICKET_H_INCLUDED_


#include <openssl/ssl.h>


/*
 * In the ticket generation callback, after ngx_device_auth_ticket_close():
 * 1 if the copy that is about to be decoded will take the built-in path,
 * 0 if it will not (no EC peer certificate, a stateful ticket, or OpenSSL
 * without ENGINE support).
 */
int ngx_device_auth_ticket_open(SSL *ssl);

/* 1 if it was still open: the copy was not decoded as expected */
int ngx_device_auth_ticket_close(void);

/* copies decoded the built-in way since the last call */
unsigned long ngx_device_auth_ticket_copies(void);

/* at the exit of the process: the ENGINE freed */
void ngx_device_auth_ticket_exit(void);


#endif /* _NGX_DEVICE_AUTH_TICKET_H_INCLUDED_ */
