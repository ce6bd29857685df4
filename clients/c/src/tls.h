/* tls.h (internal): the TLS half of a hiscore_client's byte stream, over OpenSSL. hiscore.c
 * drives it: it polls the socket for whatever a TLS_WANT_* result asks and calls again. */
#ifndef HISCORE_TLS_INTERNAL_H
#define HISCORE_TLS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "hiscore.h"

/* Results besides "n > 0 bytes moved" (tls_send/tls_recv) or 1 "done" (tls_handshake). */
enum {
    TLS_CLOSED = 0,      /* the server closed the connection */
    TLS_WANT_READ = -1,  /* poll for POLLIN, then call again */
    TLS_WANT_WRITE = -2, /* poll for POLLOUT, then call again */
    TLS_FAILED = -3      /* failed; the reason is in err */
};

/* Loads the files and sets up c->tls on the connected socket c->fd (verification on, TLS 1.2+,
 * SNI and the name to match): 1, or TLS_FAILED with the reason in err. */
int tls_open(hiscore_client *c, const char *host, const hiscore_tls_options *options, char *err,
             size_t errlen);
int tls_handshake(hiscore_client *c, char *err, size_t errlen);
long tls_send(hiscore_client *c, const uint8_t *buf, size_t len, char *err, size_t errlen);
long tls_recv(hiscore_client *c, uint8_t *buf, size_t len, char *err, size_t errlen);
/* Best-effort close_notify (never blocks), then frees c->tls. Safe when c->tls is NULL. */
void tls_close(hiscore_client *c);

#endif
