/* tls.c: TLS for hiscore_client over OpenSSL (see tls.h). Built without HISCORE_TLS (make TLS=0)
 * every entry point reports that TLS is not available. */
#define _POSIX_C_SOURCE 200809L

#include "tls.h"

#include <stdio.h>
#include <string.h>

#ifdef HISCORE_TLS

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <time.h>

/* OpenSSL writes with write(2): a server that went away would raise SIGPIPE and kill the
 * process. Every OpenSSL I/O call runs with SIGPIPE blocked, and a SIGPIPE it raised is dropped. */
typedef struct {
    sigset_t old;
    int blocked;
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *g) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    g->blocked = pthread_sigmask(SIG_BLOCK, &s, &g->old) == 0;
}

static void sigpipe_restore(sigpipe_guard *g) {
    sigset_t s;
    struct timespec zero = {0, 0};
    if (!g->blocked) return;
    if (!sigismember(&g->old, SIGPIPE)) {
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        while (sigtimedwait(&s, NULL, &zero) > 0) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* The most specific OpenSSL reason: the certificate check's own words when that failed. */
static void describe(SSL *ssl, const char *what, char *err, size_t errlen) {
    unsigned long code = ERR_peek_last_error();
    char reason[160] = "";
    long verify = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (code != 0) ERR_error_string_n(code, reason, sizeof reason);
    ERR_clear_error();
    if (verify != X509_V_OK) {
        snprintf(err, errlen, "TLS: %s: the server's certificate is not trusted: %s (%s)", what,
                 X509_verify_cert_error_string(verify), reason);
    } else if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_WRONG_VERSION_NUMBER) {
        snprintf(err, errlen, "TLS: %s: the server did not answer with TLS; is it started with --tls-cert? (%s)",
                 what, reason);
    } else if (reason[0] != '\0') {
        snprintf(err, errlen, "TLS: %s: %s", what, reason);
    } else {
        snprintf(err, errlen, "TLS: %s: %s", what, errno != 0 ? strerror(errno) : "connection closed");
    }
}

/* One SSL I/O result as a tls.h result. */
static long result(SSL *ssl, int n, const char *what, char *err, size_t errlen) {
    int code;
    if (n > 0) return n;
    code = SSL_get_error(ssl, n);
    switch (code) {
    case SSL_ERROR_WANT_READ: return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_last_error() == 0 && (n == 0 || errno == 0)) return TLS_CLOSED;
        describe(ssl, what, err, errlen);
        return TLS_FAILED;
    default:
        describe(ssl, what, err, errlen);
        return TLS_FAILED;
    }
}

static int is_ip_address(const char *name) {
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* fmt has two %s: the file (or "") and OpenSSL's reason. Frees what was made so far. */
static int fail_open(char *err, size_t errlen, SSL_CTX *ctx, SSL *ssl, const char *fmt, const char *file) {
    char reason[160] = "";
    unsigned long code = ERR_peek_last_error();
    if (code != 0) ERR_error_string_n(code, reason, sizeof reason);
    ERR_clear_error();
    snprintf(err, errlen, fmt, file != NULL ? file : "", reason);
    if (ssl != NULL) SSL_free(ssl);
    if (ctx != NULL) SSL_CTX_free(ctx);
    return TLS_FAILED;
}

int tls_open(hiscore_client *c, const char *host, const hiscore_tls_options *o, char *err, size_t errlen) {
    const char *name = o->server_name != NULL ? o->server_name : host;
    SSL_CTX *ctx;
    SSL *ssl;
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) return fail_open(err, errlen, NULL, NULL, "TLS: cannot create a context%s: %s", NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A server that closes without close_notify reads as closed: frames carry their own length. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    if (o->ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
            return fail_open(err, errlen, ctx, NULL, "TLS: cannot load the CA file %s: %s", o->ca_file);
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return fail_open(err, errlen, ctx, NULL, "TLS: cannot load the system trust store%s: %s", NULL);
    }
    if (o->cert_file != NULL) {
        const char *key = o->key_file != NULL ? o->key_file : o->cert_file;
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
            return fail_open(err, errlen, ctx, NULL, "TLS: cannot load the certificate file %s: %s", o->cert_file);
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
            return fail_open(err, errlen, ctx, NULL, "TLS: cannot load the private key file %s: %s", key);
        if (SSL_CTX_check_private_key(ctx) != 1)
            return fail_open(err, errlen, ctx, NULL, "TLS: the private key %s does not match the certificate: %s", key);
    } else if (o->key_file != NULL) {
        return fail_open(err, errlen, ctx, NULL, "TLS: key_file %s needs cert_file%s", o->key_file);
    }
    ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* ssl holds its own reference */
    if (ssl == NULL) return fail_open(err, errlen, NULL, NULL, "TLS: cannot create a connection%s: %s", NULL);
    if (SSL_set_fd(ssl, c->fd) != 1) return fail_open(err, errlen, NULL, ssl, "TLS: cannot attach the socket%s: %s", NULL);
    if (is_ip_address(name)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
            return fail_open(err, errlen, NULL, ssl, "TLS: cannot verify the address %s: %s", name);
    } else if (SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1) {
        return fail_open(err, errlen, NULL, ssl, "TLS: cannot use the server name %s: %s", name);
    }
    SSL_set_connect_state(ssl);
    c->tls = ssl;
    return 1;
}

int tls_handshake(hiscore_client *c, char *err, size_t errlen) {
    sigpipe_guard g;
    long r;
    ERR_clear_error();
    errno = 0;
    sigpipe_block(&g);
    r = result((SSL *)c->tls, SSL_do_handshake((SSL *)c->tls), "handshake failed", err, errlen);
    sigpipe_restore(&g);
    if (r == TLS_CLOSED) {
        snprintf(err, errlen, "TLS: handshake failed: the server closed the connection (does it serve TLS?)");
        return TLS_FAILED;
    }
    return (int)r;
}

long tls_send(hiscore_client *c, const uint8_t *buf, size_t len, char *err, size_t errlen) {
    sigpipe_guard g;
    long r;
    int n = len > 0x40000000u ? 0x40000000 : (int)len;
    ERR_clear_error();
    errno = 0;
    sigpipe_block(&g);
    r = result((SSL *)c->tls, SSL_write((SSL *)c->tls, buf, n), "send", err, errlen);
    sigpipe_restore(&g);
    return r;
}

long tls_recv(hiscore_client *c, uint8_t *buf, size_t len, char *err, size_t errlen) {
    sigpipe_guard g;
    long r;
    int n = len > 0x40000000u ? 0x40000000 : (int)len;
    ERR_clear_error();
    errno = 0;
    sigpipe_block(&g);
    r = result((SSL *)c->tls, SSL_read((SSL *)c->tls, buf, n), "receive", err, errlen);
    sigpipe_restore(&g);
    return r;
}

void tls_close(hiscore_client *c) {
    sigpipe_guard g;
    if (c->tls == NULL) return;
    sigpipe_block(&g);
    (void)SSL_shutdown((SSL *)c->tls); /* non-blocking socket: one try */
    sigpipe_restore(&g);
    SSL_free((SSL *)c->tls);
    ERR_clear_error();
    c->tls = NULL;
}

#else /* !HISCORE_TLS */

int tls_open(hiscore_client *c, const char *host, const hiscore_tls_options *options, char *err,
             size_t errlen) {
    (void)c;
    (void)host;
    (void)options;
    snprintf(err, errlen, "TLS: this libhiscore was built without TLS (make TLS=0)");
    return TLS_FAILED;
}

int tls_handshake(hiscore_client *c, char *err, size_t errlen) {
    (void)c;
    snprintf(err, errlen, "TLS: not available");
    return TLS_FAILED;
}

long tls_send(hiscore_client *c, const uint8_t *buf, size_t len, char *err, size_t errlen) {
    (void)buf;
    (void)len;
    return tls_handshake(c, err, errlen);
}

long tls_recv(hiscore_client *c, uint8_t *buf, size_t len, char *err, size_t errlen) {
    (void)buf;
    (void)len;
    return tls_handshake(c, err, errlen);
}

void tls_close(hiscore_client *c) { c->tls = NULL; }

#endif
