/* test_tls: hiscore_connect_tls end to end.
 *   build/test_tls PKI_DIR TLS_PORT MTLS_PORT
 * PKI_DIR holds ca.pem, other-ca.pem, client.pem/client.key (issued by ca.pem) as made by
 * clients/run-tests.sh; TLS_PORT serves TLS with a server.pem for localhost and 127.0.0.1;
 * MTLS_PORT also requires client certificates issued by ca.pem. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hiscore.h"

static int failures = 0, checks = 0;

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        checks++;                                                                                \
        if (!(cond)) {                                                                           \
            failures++;                                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
        }                                                                                        \
    } while (0)

#define EXPECT(c, want, call)                                                                    \
    do {                                                                                         \
        int st_ = (call);                                                                        \
        checks++;                                                                                \
        if (st_ != (want)) {                                                                     \
            failures++;                                                                          \
            fprintf(stderr, "%s:%d: %s -> %s (%d), want %s; error: %s\n", __FILE__, __LINE__,    \
                    #call, hiscore_status_name(st_), st_, hiscore_status_name(want), (c)->error); \
        }                                                                                        \
    } while (0)

static char paths[6][512];

static const char *pki(const char *dir, int slot, const char *name) {
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", dir, name);
    return paths[slot];
}

static hiscore_tls_options trusting(const char *ca_file) {
    hiscore_tls_options o;
    memset(&o, 0, sizeof o);
    o.ca_file = ca_file;
    return o;
}

static void served_over_tls(uint16_t port, const char *ca) {
    const char *hosts[] = {"127.0.0.1", "localhost"};
    hiscore_tls_options o = trusting(ca);
    size_t i;
    for (i = 0; i < 2; i++) {
        hiscore_client c;
        hiscore_submit_result r;
        EXPECT(&c, HISCORE_OK, hiscore_connect_tls(&c, hosts[i], port, 10000, &o));
        EXPECT(&c, HISCORE_OK, hiscore_submit(&c, "c-tls", hosts[i], 10 + (int64_t)i, 0, NULL, 0, &r));
        CHECK(c.tls != NULL);
        hiscore_close(&c);
    }
    {
        hiscore_client c;
        hiscore_entry top[4];
        size_t n = 0;
        hiscore_page page;
        hiscore_top_query q;
        memset(&q, 0, sizeof q);
        q.board_id = "c-tls";
        q.limit = 4;
        EXPECT(&c, HISCORE_OK, hiscore_connect_tls(&c, "127.0.0.1", port, 10000, &o));
        EXPECT(&c, HISCORE_OK, hiscore_top(&c, &q, top, 4, &n, &page));
        CHECK(n == 2 && strcmp(top[0].player_id, "localhost") == 0);
        hiscore_close(&c);
    }
    printf("TLS: submit and top over TLS: done\n");
}

static void refused(uint16_t port, const char *dir) {
    hiscore_client c;
    hiscore_tls_options o = trusting(pki(dir, 1, "other-ca.pem"));
    EXPECT(&c, HISCORE_ERR_TLS, hiscore_connect_tls(&c, "127.0.0.1", port, 10000, &o));
    CHECK(strstr(c.error, "not trusted") != NULL);
    hiscore_close(&c);

    EXPECT(&c, HISCORE_ERR_TLS, hiscore_connect_tls(&c, "127.0.0.1", port, 10000, NULL)); /* system CAs */
    hiscore_close(&c);

    o = trusting(pki(dir, 1, "ca.pem"));
    o.server_name = "scores.example.com"; /* not in the certificate */
    EXPECT(&c, HISCORE_ERR_TLS, hiscore_connect_tls(&c, "127.0.0.1", port, 10000, &o));
    hiscore_close(&c);

    o = trusting(pki(dir, 1, "missing-ca.pem"));
    EXPECT(&c, HISCORE_ERR_TLS, hiscore_connect_tls(&c, "127.0.0.1", port, 10000, &o));
    CHECK(strstr(c.error, "missing-ca.pem") != NULL);
    hiscore_close(&c);

    /* A plain client gets a TLS alert, not service, and is told what it read. */
    CHECK(hiscore_connect(&c, "127.0.0.1", port, 10000) != HISCORE_OK);
    CHECK(c.fd < 0);
    CHECK(strstr(c.error, "TLS record") != NULL);
    hiscore_close(&c);
    printf("TLS: untrusted, misnamed and plain connections refused: done\n");
}

/* A TLS client at a plain port is told the server does not speak TLS (it was OpenSSL's bare
   "wrong version number"). */
static void plain_server(uint16_t plain_port, const char *dir) {
    hiscore_client c;
    hiscore_tls_options o = trusting(pki(dir, 1, "ca.pem"));
    EXPECT(&c, HISCORE_ERR_TLS, hiscore_connect_tls(&c, "127.0.0.1", plain_port, 10000, &o));
    CHECK(strstr(c.error, "did not answer with TLS") != NULL);
    hiscore_close(&c);
    printf("TLS: a plain server is named as such: done\n");
}

static void mutual(uint16_t port, const char *dir) {
    hiscore_client c;
    hiscore_submit_result r;
    hiscore_tls_options o = trusting(pki(dir, 1, "ca.pem"));
    int st = hiscore_connect_tls(&c, "127.0.0.1", port, 10000, &o);
    /* TLS 1.3: the client finishes its handshake first and learns of the refusal after it. */
    if (st == HISCORE_OK) st = hiscore_submit(&c, "c-mtls", "anonymous", 1, 0, NULL, 0, &r);
    CHECK(st == HISCORE_ERR_TLS || st == HISCORE_ERR_IO);
    hiscore_close(&c);

    o.cert_file = pki(dir, 2, "client.pem");
    o.key_file = pki(dir, 3, "client.key");
    EXPECT(&c, HISCORE_OK, hiscore_connect_tls(&c, "127.0.0.1", port, 10000, &o));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, "c-mtls", "alice", 7, 0, NULL, 0, &r));
    CHECK(r.entry.rank == 1);
    hiscore_close(&c);
    printf("TLS: client certificates required and accepted: done\n");
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s PKI_DIR TLS_PORT MTLS_PORT PLAIN_PORT\n", argv[0]);
        return 2;
    }
    served_over_tls((uint16_t)atoi(argv[2]), pki(argv[1], 0, "ca.pem"));
    refused((uint16_t)atoi(argv[2]), argv[1]);
    mutual((uint16_t)atoi(argv[3]), argv[1]);
    plain_server((uint16_t)atoi(argv[4]), argv[1]);
    printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
