/* test_client: conformance vectors + end-to-end tests of libhiscore.
 *   build/test_client <vectors.txt> [port]     (port also from $HISCORE_PORT, host $HISCORE_HOST)
 * Without a port only the vectors run (unless $HISCORE_REQUIRE_SERVER=1: then that fails). */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hiscore.h"
#include "hiscore/v1/hiscore.pb-c.h"

static int failures = 0, checks = 0;

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        checks++;                                                                                \
        if (!(cond)) {                                                                           \
            failures++;                                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
        }                                                                                        \
    } while (0)

/* Expect status `want` from a client call; prints the client's error otherwise. */
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

/* ------------------------------------------------------------------------------------------ */
/* Conformance vectors */

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
    size_t n = 0;
    while (hex[0] && hex[1] && n < cap) {
        int hi = hexval(hex[0]), lo = hexval(hex[1]);
        if (hi < 0 || lo < 0) break;
        out[n++] = (uint8_t)(hi * 16 + lo);
        hex += 2;
    }
    return n;
}

/* Spot checks of the decoded meaning (vectors.json has the full meaning of every vector). */
static void check_request_meaning(const char *name, const Hiscore__V1__Request *r) {
    if (strcmp(name, "request_ping_doc_example") == 0) {
        CHECK(r->call_id == 1 && r->method_case == HISCORE__V1__REQUEST__METHOD_PING);
        CHECK(r->ping->payload.len == 2 && memcmp(r->ping->payload.data, "hi", 2) == 0);
    } else if (strcmp(name, "request_submit_metadata_deadline_token") == 0) {
        CHECK(r->deadline_ms == 250 && strcmp(r->auth_token, "key-123") == 0);
        CHECK(r->submit->score == INT64_MAX && r->submit->subscore == INT64_MIN);
        CHECK(r->submit->metadata_value_case == HISCORE__V1__SUBMIT_REQUEST__METADATA_VALUE_METADATA);
        CHECK(r->submit->metadata.len == 3);
    } else if (strcmp(name, "request_submit_empty_metadata") == 0) {
        CHECK(r->submit->metadata_value_case == HISCORE__V1__SUBMIT_REQUEST__METADATA_VALUE_METADATA);
        CHECK(r->submit->metadata.len == 0 && r->submit->score == -1);
    } else if (strcmp(name, "request_submit") == 0) {
        CHECK(r->submit->metadata_value_case == HISCORE__V1__SUBMIT_REQUEST__METADATA_VALUE__NOT_SET);
    } else if (strcmp(name, "request_top_offset_zero") == 0) {
        CHECK(r->top->start_case == HISCORE__V1__TOP_REQUEST__START_OFFSET && r->top->offset == 0);
    } else if (strcmp(name, "request_top_cursor") == 0) {
        CHECK(r->top->start_case == HISCORE__V1__TOP_REQUEST__START_CURSOR && r->top->cursor.len == 3);
        CHECK(r->top->limit == 500 && r->top->rank_mode == HISCORE__V1__RANK_MODE__RANK_MODE_ORDINAL);
    } else if (strcmp(name, "request_count_bounds") == 0) {
        CHECK(r->count->min_case == HISCORE__V1__COUNT_REQUEST__MIN_MIN_SCORE && r->count->min_score == 0);
        CHECK(r->count->max_case == HISCORE__V1__COUNT_REQUEST__MAX_MAX_SCORE && r->count->max_score == -1);
    } else if (strcmp(name, "request_subscribe_feed") == 0) {
        CHECK(r->subscribe->target_case == HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_FEED);
    } else if (strcmp(name, "request_erase_player") == 0) {
        CHECK(r->call_id == 35 && r->method_case == HISCORE__V1__REQUEST__METHOD_ERASE_PLAYER);
        CHECK(strcmp(r->erase_player->player_id, "alice") == 0);
    } else if (strcmp(name, "request_max_call_id") == 0) {
        CHECK(r->call_id == UINT64_MAX && r->ping->payload.len == 256);
    }
}

static void check_response_meaning(const char *name, const Hiscore__V1__Response *r) {
    if (strcmp(name, "response_hello") == 0) {
        CHECK(r->call_id == 0 && r->result_case == HISCORE__V1__RESPONSE__RESULT_HELLO);
        CHECK(r->hello->protocol_version == 1 && r->hello->max_frame_bytes == 1048576);
        CHECK(r->hello->max_inflight_calls == 256 && r->hello->max_metadata_bytes == 256);
    } else if (strcmp(name, "response_error_not_found") == 0) {
        CHECK(r->call_id == 7 && r->status != NULL && r->status->code == 5);
        CHECK(r->result_case == HISCORE__V1__RESPONSE__RESULT__NOT_SET);
    } else if (strcmp(name, "response_error_connection_level") == 0) {
        CHECK(r->call_id == 0 && (int)r->status->code == HISCORE_INVALID_ARGUMENT);
    } else if (strcmp(name, "response_submit_batch") == 0) {
        CHECK(r->submit_batch->n_results == 2 && r->submit_batch->results[1]->status->code == 3);
    } else if (strcmp(name, "response_get_rank") == 0) {
        CHECK(r->get_rank->entry->score == INT64_MIN && r->get_rank->entry->rank == UINT64_MAX);
        CHECK(r->get_rank->board_size == UINT64_MAX);
    } else if (strcmp(name, "response_event_window_changes") == 0) {
        const Hiscore__V1__WindowUpdate *w = r->event->window;
        CHECK(r->event->change_case == HISCORE__V1__RANK_EVENT__CHANGE_WINDOW && w->n_changes == 3);
        CHECK((int)w->changes[0]->kind == HISCORE_WINDOW_ENTERED && (int)w->changes[2]->kind == HISCORE_WINDOW_LEFT);
        CHECK(w->changes[1]->previous_position == 0 && w->changes[1]->position == 1);
    } else if (strcmp(name, "response_event_player_snapshot") == 0) {
        CHECK(r->event->snapshot && r->event->player->present && r->event->player->entry->rank == 3);
    } else if (strcmp(name, "response_event_feed") == 0) {
        CHECK(r->event->feed->n_items == 3 && r->event->feed->items[2]->removed);
    } else if (strcmp(name, "response_erase_player") == 0) {
        CHECK(r->call_id == 35 && r->result_case == HISCORE__V1__RESPONSE__RESULT_ERASE_PLAYER);
        CHECK(r->erase_player->removed_entries == 4);
    } else if (strcmp(name, "response_stream_end_ok") == 0) {
        CHECK(r->call_id == 25 && r->status == NULL && r->result_case == HISCORE__V1__RESPONSE__RESULT__NOT_SET);
    }
}

static void run_vectors(const char *path) {
    FILE *f = fopen(path, "r");
    char line[8192], name[128], type[64], hex[4096 + 1];
    static uint8_t bytes[4096], repacked[4096];
    int n_vectors = 0;
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        failures++;
        return;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        size_t n;
        uint32_t body_len = 0;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (sscanf(line, "%127s %63s %4096s", name, type, hex) != 3) {
            fprintf(stderr, "bad vector line: %s", line);
            failures++;
            continue;
        }
        n_vectors++;
        n = unhex(hex, bytes, sizeof bytes);
        CHECK(n * 2 == strlen(hex));
        if (strcmp(type, "preface") == 0) {
            CHECK(n == HISCORE_PREFACE_SIZE && memcmp(bytes, HISCORE_PREFACE, n) == 0);
            continue;
        }
        CHECK(n >= HISCORE_FRAME_HEADER_SIZE);
        CHECK(hiscore_frame_header_decode(bytes, 1u << 20, &body_len) == HISCORE_OK);
        CHECK(body_len == n - HISCORE_FRAME_HEADER_SIZE);
        {
            uint8_t header[HISCORE_FRAME_HEADER_SIZE];
            hiscore_frame_header_encode(header, body_len);
            CHECK(memcmp(header, bytes, HISCORE_FRAME_HEADER_SIZE) == 0);
        }
        if (strcmp(type, "hiscore.v1.Request") == 0) {
            Hiscore__V1__Request *r =
                hiscore__v1__request__unpack(NULL, body_len, bytes + HISCORE_FRAME_HEADER_SIZE);
            CHECK(r != NULL);
            if (r == NULL) continue;
            CHECK(hiscore__v1__request__get_packed_size(r) == body_len);
            CHECK(hiscore__v1__request__pack(r, repacked) == body_len);
            if (memcmp(repacked, bytes + HISCORE_FRAME_HEADER_SIZE, body_len) != 0) {
                fprintf(stderr, "vector %s: re-encoding differs\n", name);
                failures++;
            }
            check_request_meaning(name, r);
            hiscore__v1__request__free_unpacked(r, NULL);
        } else if (strcmp(type, "hiscore.v1.Response") == 0) {
            Hiscore__V1__Response *r =
                hiscore__v1__response__unpack(NULL, body_len, bytes + HISCORE_FRAME_HEADER_SIZE);
            CHECK(r != NULL);
            if (r == NULL) continue;
            CHECK(hiscore__v1__response__get_packed_size(r) == body_len);
            CHECK(hiscore__v1__response__pack(r, repacked) == body_len);
            if (memcmp(repacked, bytes + HISCORE_FRAME_HEADER_SIZE, body_len) != 0) {
                fprintf(stderr, "vector %s: re-encoding differs\n", name);
                failures++;
            }
            check_response_meaning(name, r);
            hiscore__v1__response__free_unpacked(r, NULL);
        } else {
            fprintf(stderr, "vector %s: unknown type %s\n", name, type);
            failures++;
        }
    }
    fclose(f);
    CHECK(n_vectors >= 60);
    printf("vectors: %d checked\n", n_vectors);
    /* framing edge cases */
    {
        static const uint8_t compressed[5] = {1, 0, 0, 0, 0}, big[5] = {0, 0, 0x10, 0, 1};
        uint32_t len = 0;
        CHECK(hiscore_frame_header_decode(compressed, 1u << 20, &len) == HISCORE_ERR_PROTOCOL);
        CHECK(hiscore_frame_header_decode(big, 1u << 20, &len) == HISCORE_ERR_PROTOCOL);
        CHECK(strcmp(hiscore_status_name(HISCORE_NOT_FOUND), "NOT_FOUND") == 0);
        CHECK(strcmp(hiscore_status_name(HISCORE_ERR_TIMEOUT), "ERR_TIMEOUT") == 0);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* End to end */

static void unique_name(char *out, size_t cap, const char *prefix) {
    struct timespec ts;
    static unsigned counter = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, cap, "%s-%ld-%ld-%u", prefix, (long)ts.tv_sec, (long)(ts.tv_nsec / 1000), counter++);
}

static void run_e2e(const char *host, uint16_t port) {
    hiscore_client c, c2;
    hiscore_submit_result res;
    hiscore_entry one, *page_entries;
    hiscore_page page;
    hiscore_top_query q;
    hiscore_board_config cfg;
    char board[96], asc[96], dense[96], unranked[96], long_id[140];
    uint8_t echo[64];
    size_t n = 0, total, i;
    uint64_t size = 0, count = 0, removed = 0;
    int64_t lo = 95, hi = 98;
    int st;

    page_entries = (hiscore_entry *)calloc(1001, sizeof *page_entries);
    if (page_entries == NULL) {
        failures++;
        return;
    }
    unique_name(board, sizeof board, "c");
    unique_name(asc, sizeof asc, "c-asc");
    unique_name(dense, sizeof dense, "c-dense");
    unique_name(unranked, sizeof unranked, "c-unranked");

    EXPECT(&c, HISCORE_OK, hiscore_connect(&c, host, port, 10000));
    CHECK(c.hello.protocol_version == 1 && c.hello.max_page_entries == 1000);
    EXPECT(&c, HISCORE_OK, hiscore_ping(&c, (const uint8_t *)"hi", 2, echo, sizeof echo, &n));
    CHECK(n == 2 && memcmp(echo, "hi", 2) == 0);

    /* submit / rank, descending, best */
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, board, "alice", 100, 0, (const uint8_t *)"m1", 2, &res));
    CHECK(res.created && res.changed && res.entry.rank == 1 && res.previous_rank == 0);
    CHECK(res.entry.metadata_len == 2 && memcmp(res.entry.metadata, "m1", 2) == 0);
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, board, "bob", 200, 0, NULL, 0, &res));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, board, "carol", 150, 0, NULL, 0, NULL));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, board, "alice", 50, 0, NULL, 0, &res));
    CHECK(!res.changed && res.entry.score == 100 && res.entry.metadata_len == 2);
    EXPECT(&c, HISCORE_OK, hiscore_rank(&c, board, "alice", HISCORE_RANK_DEFAULT, &one, &size));
    CHECK(one.rank == 3 && size == 3 && strcmp(one.player_id, "alice") == 0 && one.reached_at_us > 0);

    /* unranked submits (skip_ranks; the runner's server has 2 shards, so the board is split):
     * no ranks in the answer, created / changed as usual, and the board ranks them as usual */
    EXPECT(&c, HISCORE_OK, hiscore_submit_unranked(&c, unranked, "u1", 10, 0, (const uint8_t *)"m", 1, &res));
    CHECK(res.created && res.changed && res.entry.rank == 0 && res.previous_rank == 0);
    CHECK(res.entry.score == 10 && strcmp(res.entry.player_id, "u1") == 0 && res.entry.metadata_len == 1);
    for (i = 2; i <= 8; i++) {
        char p[16];
        snprintf(p, sizeof p, "u%u", (unsigned)i);
        EXPECT(&c, HISCORE_OK, hiscore_submit_unranked(&c, unranked, p, 10 * (int64_t)i, 0, NULL, 0, &res));
        CHECK(res.created && res.changed && res.entry.rank == 0 && res.previous_rank == 0);
    }
    EXPECT(&c, HISCORE_OK, hiscore_submit_unranked(&c, unranked, "u1", 100, 0, NULL, 0, &res));
    CHECK(!res.created && res.changed && res.entry.rank == 0 && res.previous_rank == 0);
    CHECK(res.entry.score == 100 && res.entry.metadata_len == 1);
    EXPECT(&c, HISCORE_OK, hiscore_submit_unranked(&c, unranked, "u2", 5, 0, NULL, 0, &res)); /* worse */
    CHECK(!res.created && !res.changed && res.entry.score == 20 && res.entry.rank == 0 && res.previous_rank == 0);
    EXPECT(&c, HISCORE_OK, hiscore_submit_unranked(&c, unranked, "u9", 1, 0, NULL, 0, NULL));
    EXPECT(&c, HISCORE_OK, hiscore_rank(&c, unranked, "u1", HISCORE_RANK_DEFAULT, &one, &size));
    CHECK(one.rank == 1 && one.score == 100 && size == 9);
    EXPECT(&c, HISCORE_OK, hiscore_rank(&c, unranked, "u5", HISCORE_RANK_DEFAULT, &one, NULL));
    CHECK(one.rank == 5 && one.score == 50);
    EXPECT(&c, HISCORE_OK, hiscore_rank(&c, unranked, "u9", HISCORE_RANK_DEFAULT, &one, NULL));
    CHECK(one.rank == 9);
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, unranked, "u2", 90, 0, NULL, 0, &res)); /* ranked again */
    CHECK(res.changed && res.previous_rank == 8 && res.entry.rank == 2);
    EXPECT(&c, HISCORE_ERR_ARG, hiscore_submit_unranked(&c, unranked, NULL, 1, 0, NULL, 0, NULL));

    /* paging: 25 more players, by cursor */
    for (i = 0; i < 25; i++) {
        char p[16];
        snprintf(p, sizeof p, "p%02u", (unsigned)i);
        EXPECT(&c, HISCORE_OK, hiscore_submit(&c, board, p, 99 - (int64_t)i, 0, NULL, 0, NULL));
    }
    memset(&q, 0, sizeof q);
    q.board_id = board;
    q.limit = 10;
    total = 0;
    for (;;) {
        size_t k;
        EXPECT(&c, HISCORE_OK, hiscore_top(&c, &q, page_entries, 10, &n, &page));
        for (k = 0; k < n; k++) CHECK(page_entries[k].rank == total + k + 1);
        total += n;
        if (page.next_cursor_len == 0 || c.last_status != HISCORE_OK) break;
        q.cursor = page.next_cursor;
        q.cursor_len = page.next_cursor_len;
    }
    CHECK(total == 28 && page.board_size == 28);
    memset(&q, 0, sizeof q);
    q.board_id = board;
    q.limit = 3;
    q.has_offset = 1;
    q.offset = 1;
    EXPECT(&c, HISCORE_OK, hiscore_top(&c, &q, page_entries, 3, &n, NULL));
    CHECK(n == 3 && strcmp(page_entries[0].player_id, "carol") == 0 && page_entries[0].rank == 2);
    CHECK(strcmp(page_entries[1].player_id, "alice") == 0 && strcmp(page_entries[2].player_id, "p00") == 0);
    EXPECT(&c, HISCORE_OK, hiscore_around(&c, board, "p05", 2, 1, HISCORE_RANK_DEFAULT, page_entries, 4, &n, &size));
    CHECK(n == 4 && strcmp(page_entries[0].player_id, "p03") == 0 && strcmp(page_entries[3].player_id, "p06") == 0);
    EXPECT(&c, HISCORE_OK, hiscore_count(&c, board, &lo, &hi, &count, &size));
    CHECK(count == 4 && size == 28);
    EXPECT(&c, HISCORE_OK, hiscore_count(&c, board, NULL, NULL, &count, NULL));
    CHECK(count == 28);

    /* ascending board, ties, rank modes */
    memset(&cfg, 0, sizeof cfg);
    cfg.board_id = asc;
    cfg.score_order = HISCORE_SORT_ASCENDING;
    EXPECT(&c, HISCORE_OK, hiscore_create_board(&c, &cfg));
    EXPECT(&c, HISCORE_OK, hiscore_create_board(&c, &cfg)); /* idempotent */
    cfg.write_operator = HISCORE_OP_SET;
    EXPECT(&c, HISCORE_ALREADY_EXISTS, hiscore_create_board(&c, &cfg));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, asc, "a", 10, 0, NULL, 0, NULL));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, asc, "b", 20, 0, NULL, 0, NULL));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, asc, "c", 20, 0, NULL, 0, NULL));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, asc, "d", 30, 0, NULL, 0, NULL));
    memset(&q, 0, sizeof q);
    q.board_id = asc;
    q.rank_mode = HISCORE_RANK_COMPETITION;
    EXPECT(&c, HISCORE_OK, hiscore_top(&c, &q, page_entries, 10, &n, NULL));
    CHECK(n == 4 && page_entries[0].rank == 1 && page_entries[1].rank == 2 && page_entries[2].rank == 2 &&
          page_entries[3].rank == 4);
    CHECK(strcmp(page_entries[0].player_id, "a") == 0 && strcmp(page_entries[1].player_id, "b") == 0);
    q.rank_mode = HISCORE_RANK_DENSE;
    EXPECT(&c, HISCORE_FAILED_PRECONDITION, hiscore_top(&c, &q, page_entries, 10, &n, NULL));
    memset(&cfg, 0, sizeof cfg);
    cfg.board_id = dense;
    cfg.rank_mode = HISCORE_RANK_DENSE;
    EXPECT(&c, HISCORE_OK, hiscore_create_board(&c, &cfg));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, dense, "a", 30, 0, NULL, 0, NULL));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, dense, "b", 20, 0, NULL, 0, NULL));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, dense, "c", 20, 0, NULL, 0, NULL));
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, dense, "d", 10, 0, NULL, 0, NULL));
    EXPECT(&c, HISCORE_OK, hiscore_rank(&c, dense, "d", HISCORE_RANK_DENSE, &one, NULL));
    CHECK(one.rank == 3);

    /* errors */
    EXPECT(&c, HISCORE_NOT_FOUND, hiscore_rank(&c, board, "nobody", HISCORE_RANK_DEFAULT, &one, NULL));
    CHECK(c.error[0] != '\0');
    EXPECT(&c, HISCORE_NOT_FOUND, hiscore_rank(&c, "c-no-such-board-x", "a", HISCORE_RANK_DEFAULT, &one, NULL));
    EXPECT(&c, HISCORE_INVALID_ARGUMENT, hiscore_submit(&c, board, "bad id!", 1, 0, NULL, 0, NULL));
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    EXPECT(&c, HISCORE_INVALID_ARGUMENT, hiscore_submit(&c, board, long_id, 1, 0, NULL, 0, NULL));
    long_id[128] = '\0';
    EXPECT(&c, HISCORE_OK, hiscore_submit(&c, board, long_id, 1, 0, NULL, 0, &res));
    CHECK(strlen(res.entry.player_id) == 128);
    memset(&q, 0, sizeof q);
    q.board_id = board;
    q.limit = 1001;
    EXPECT(&c, HISCORE_OUT_OF_RANGE, hiscore_top(&c, &q, page_entries, 1001, &n, NULL));
    EXPECT(&c, HISCORE_ERR_ARG, hiscore_top(&c, &q, page_entries, 10, &n, NULL)); /* local check */
    EXPECT(&c, HISCORE_ERR_ARG, hiscore_submit(&c, NULL, "a", 1, 0, NULL, 0, NULL));

    /* raw call: a method without a wrapper, and cancel */
    {
        Hiscore__V1__Request req = HISCORE__V1__REQUEST__INIT;
        Hiscore__V1__DescribeBoardRequest d = HISCORE__V1__DESCRIBE_BOARD_REQUEST__INIT;
        Hiscore__V1__Response *resp = NULL;
        int cancelled = 1;
        d.board_id = board;
        req.method_case = HISCORE__V1__REQUEST__METHOD_DESCRIBE_BOARD;
        req.describe_board = &d;
        EXPECT(&c, HISCORE_OK, hiscore_call(&c, &req, &resp));
        CHECK(resp != NULL && resp->describe_board->board->size == 29);
        hiscore_free_response(resp);
        EXPECT(&c, HISCORE_OK, hiscore_cancel(&c, 123456789u, &cancelled));
        CHECK(cancelled == 0);
        /* a subscribe is a stream: hiscore_call refuses it unsent (it took the first event as
         * the answer and left the stream running on the server, its events dropped) */
        {
            Hiscore__V1__Request sreq = HISCORE__V1__REQUEST__INIT;
            Hiscore__V1__SubscribeRequest s = HISCORE__V1__SUBSCRIBE_REQUEST__INIT;
            s.board_id = board;
            s.target_case = HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_TOP;
            s.top = 3;
            sreq.method_case = HISCORE__V1__REQUEST__METHOD_SUBSCRIBE;
            sreq.subscribe = &s;
            resp = NULL;
            EXPECT(&c, HISCORE_ERR_ARG, hiscore_call(&c, &sreq, &resp));
            CHECK(resp == NULL && strstr(c.error, "hiscore_subscribe") != NULL);
            hiscore_free_response(resp);
            EXPECT(&c, HISCORE_ERR_NO_EVENT, hiscore_poll_event(&c, 300, &(hiscore_event){0}));
        }
    }

    /* subscription: a snapshot, then a live change when another player passes alice */
    {
        hiscore_subscribe_query sq;
        hiscore_event_item items[8];
        hiscore_event ev;
        uint64_t sub = 0;
        memset(&sq, 0, sizeof sq);
        sq.board_id = board;
        sq.target = HISCORE_SUB_PLAYER;
        sq.player_id = "alice";
        st = hiscore_subscribe(&c, &sq, &sub);
        CHECK(st == HISCORE_OK);
        ev.items = items;
        ev.items_cap = 8;
        if (st == HISCORE_OK) {
            uint64_t first_rank;
            hiscore_submit_result passer;
            EXPECT(&c, HISCORE_OK, hiscore_poll_event(&c, 5000, &ev));
            CHECK(ev.subscription_id == sub && ev.snapshot && ev.type == HISCORE_EVENT_PLAYER);
            first_rank = ev.entry.rank;
            EXPECT(&c, HISCORE_OK, hiscore_submit(&c, board, "zz-passer", INT64_MAX / 2, 0, NULL, 0, &passer));
            EXPECT(&c, HISCORE_OK, hiscore_poll_event(&c, 5000, &ev));
            CHECK(ev.subscription_id == sub && !ev.snapshot && ev.type == HISCORE_EVENT_PLAYER);
            CHECK(ev.present && ev.entry.rank == first_rank + 1 && ev.previous_rank == first_rank);
            EXPECT(&c, HISCORE_OK, hiscore_unsubscribe(&c, sub));
            do {
                st = hiscore_poll_event(&c, 5000, &ev);
            } while (st == HISCORE_OK && ev.type != HISCORE_EVENT_END);
            CHECK(st == HISCORE_OK && ev.final_status == HISCORE_CANCELLED);
        } else {
            printf("subscribe: %s (%s)\n", hiscore_status_name(st), c.error);
            EXPECT(&c, HISCORE_ERR_NO_EVENT, hiscore_poll_event(&c, 0, &ev));
        }
        EXPECT(&c, HISCORE_OK, hiscore_ping(&c, NULL, 0, NULL, 0, &n));
        CHECK(n == 0);
    }

    /* erase a player from every board (a unique player id: erase_player reaches every board on
     * the server); another player stays */
    {
        char erased[96], e1[96], e2[96];
        unique_name(erased, sizeof erased, "c-erased");
        unique_name(e1, sizeof e1, "c-erase");
        unique_name(e2, sizeof e2, "c-erase");
        EXPECT(&c, HISCORE_OK, hiscore_submit(&c, e1, erased, 10, 0, NULL, 0, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_submit(&c, e2, erased, 20, 0, NULL, 0, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_submit(&c, e2, "stays", 5, 0, NULL, 0, NULL));
        removed = 99;
        EXPECT(&c, HISCORE_OK, hiscore_erase_player(&c, erased, &removed));
        CHECK(removed == 2);
        EXPECT(&c, HISCORE_NOT_FOUND, hiscore_rank(&c, e1, erased, HISCORE_RANK_DEFAULT, &one, NULL));
        EXPECT(&c, HISCORE_NOT_FOUND, hiscore_rank(&c, e2, erased, HISCORE_RANK_DEFAULT, &one, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_rank(&c, e2, "stays", HISCORE_RANK_DEFAULT, &one, &size));
        CHECK(one.rank == 1 && one.score == 5 && size == 1);
        removed = 99;
        EXPECT(&c, HISCORE_OK, hiscore_erase_player(&c, erased, &removed)); /* idempotent */
        CHECK(removed == 0);
        EXPECT(&c, HISCORE_OK, hiscore_erase_player(&c, erased, NULL));
        EXPECT(&c, HISCORE_INVALID_ARGUMENT, hiscore_erase_player(&c, "", &removed));
        EXPECT(&c, HISCORE_INVALID_ARGUMENT, hiscore_erase_player(&c, "bad id!", &removed));
        EXPECT(&c, HISCORE_ERR_ARG, hiscore_erase_player(&c, NULL, &removed)); /* local check */
        EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, e1, &removed));
        CHECK(removed == 0);
        EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, e2, &removed));
        CHECK(removed == 1);
    }

    /* seasons: a scheduled board, a manual reset, every query on the archived period, friends */
    {
        char season[96], sched[96], pids[5][8];
        const char *friends[3] = {"p1", "new", "p3"};
        hiscore_board_options opts;
        hiscore_board_info info;
        hiscore_period periods[4];
        uint64_t period = 0, archived = 0;
        unique_name(season, sizeof season, "c-season");
        unique_name(sched, sizeof sched, "c-season-sched");
        memset(&cfg, 0, sizeof cfg);
        cfg.board_id = sched;
        memset(&opts, 0, sizeof opts);
        opts.client_writes = 1;
        opts.reset_period = HISCORE_RESET_WEEKLY;
        opts.minute_of_day = 90;
        opts.weekday = 3;
        opts.keep_periods = 4;
        EXPECT(&c, HISCORE_OK, hiscore_create_board_with(&c, &cfg, &opts));
        EXPECT(&c, HISCORE_OK, hiscore_create_board_with(&c, &cfg, &opts)); /* idempotent */
        opts.reset_period = HISCORE_RESET_DAILY;
        EXPECT(&c, HISCORE_ALREADY_EXISTS, hiscore_create_board_with(&c, &cfg, &opts));
        EXPECT(&c, HISCORE_OK, hiscore_describe_board(&c, sched, &info, NULL, 0));
        CHECK(info.client_writes == 1 && info.reset_period == HISCORE_RESET_WEEKLY);
        CHECK(info.size == 0 && info.n_periods == 0);

        for (i = 0; i < 5; i++) {
            snprintf(pids[i], sizeof pids[i], "p%zu", i);
            EXPECT(&c, HISCORE_OK, hiscore_submit(&c, season, pids[i], (int64_t)(10 * (i + 1)), 0,
                                                  NULL, 0, NULL));
        }
        EXPECT(&c, HISCORE_OK, hiscore_reset_board(&c, season, &period, &archived));
        CHECK(period > 0 && archived == 5);
        EXPECT(&c, HISCORE_OK, hiscore_submit(&c, season, "p0", 1000, 0, NULL, 0, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_submit(&c, season, "new", 1, 0, NULL, 0, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_describe_board(&c, season, &info, periods, 4));
        CHECK(info.size == 2 && info.current_period_id == period + 1 && info.n_periods == 1);
        CHECK(periods[0].period_id == period && periods[0].size == 5);
        CHECK(periods[0].ended_at_us >= periods[0].started_at_us && periods[0].ended_at_us > 0);

        EXPECT(&c, HISCORE_OK, hiscore_rank_in_period(&c, season, "p0", HISCORE_RANK_DEFAULT, period,
                                                      &one, &size));
        CHECK(one.score == 10 && one.rank == 5 && size == 5);
        EXPECT(&c, HISCORE_OK, hiscore_rank(&c, season, "p0", HISCORE_RANK_DEFAULT, &one, &size));
        CHECK(one.rank == 1 && size == 2);
        memset(&q, 0, sizeof q);
        q.board_id = season;
        q.limit = 3;
        EXPECT(&c, HISCORE_OK, hiscore_top_in_period(&c, &q, period, page_entries, 1001, &n, &page));
        CHECK(n == 3 && page.board_size == 5 && strcmp(page_entries[0].player_id, "p4") == 0 &&
              strcmp(page_entries[2].player_id, "p2") == 0 && page.next_cursor_len > 0);
        q.cursor = page.next_cursor;
        q.cursor_len = page.next_cursor_len;
        EXPECT(&c, HISCORE_OK, hiscore_top_in_period(&c, &q, period, page_entries, 1001, &n, &page));
        CHECK(n == 2 && strcmp(page_entries[0].player_id, "p1") == 0 && page_entries[1].rank == 5);
        EXPECT(&c, HISCORE_OK, hiscore_around_in_period(&c, season, "p2", 1, 1, HISCORE_RANK_DEFAULT,
                                                        period, page_entries, 3, &n, &size));
        CHECK(n == 3 && strcmp(page_entries[0].player_id, "p3") == 0 &&
              strcmp(page_entries[1].player_id, "p2") == 0 && page_entries[1].rank == 3);
        lo = 20;
        hi = 40;
        EXPECT(&c, HISCORE_OK, hiscore_count_in_period(&c, season, &lo, &hi, period, &count, &size));
        CHECK(count == 3 && size == 5);
        EXPECT(&c, HISCORE_OK, hiscore_count(&c, season, &lo, &hi, &count, &size));
        CHECK(count == 0 && size == 2);
        EXPECT(&c, HISCORE_OK, hiscore_entries(&c, season, friends, 3, HISCORE_RANK_DEFAULT, period,
                                               page_entries, 3, &n, &size));
        CHECK(n == 2 && size == 5 && strcmp(page_entries[0].player_id, "p3") == 0 &&
              page_entries[0].rank == 2 && strcmp(page_entries[1].player_id, "p1") == 0);
        EXPECT(&c, HISCORE_OK, hiscore_entries(&c, season, friends, 3, HISCORE_RANK_DEFAULT, 0,
                                               page_entries, 3, &n, &size));
        CHECK(n == 1 && strcmp(page_entries[0].player_id, "new") == 0 && page_entries[0].rank == 2);
        EXPECT(&c, HISCORE_ERR_ARG, hiscore_entries(&c, season, friends, 3, HISCORE_RANK_DEFAULT, 0,
                                                    page_entries, 2, &n, &size));
        EXPECT(&c, HISCORE_NOT_FOUND, hiscore_rank_in_period(&c, season, "p0", HISCORE_RANK_DEFAULT,
                                                             period + 7, &one, &size));
        EXPECT(&c, HISCORE_NOT_FOUND, hiscore_reset_board(&c, "c-no-such-board", NULL, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, season, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, sched, NULL));
    }

    /* submit_batch: applied and refused items in one call, per-item status and ranks */
    {
        char bb[96], bb2[96], long_pid[140];
        hiscore_batch_item items[6];
        hiscore_batch_result results[6];
        size_t refused = 99;
        memset(long_pid, 'y', 129);
        long_pid[129] = '\0';
        unique_name(bb, sizeof bb, "c-batch");
        unique_name(bb2, sizeof bb2, "c-batch2");
        memset(items, 0, sizeof items);
        items[0].board_id = bb;                 /* applied: new player */
        items[0].player_id = "alice";
        items[0].score = 10;
        items[1].board_id = bb;                 /* refused: a 129-byte player id */
        items[1].player_id = long_pid;
        items[1].score = 1;
        items[2].board_id = bb;                 /* applied after item 0 (same player, in order) */
        items[2].player_id = "alice";
        items[2].score = 30;
        items[2].subscore = 4;
        items[2].metadata = (const uint8_t *)"mb";
        items[2].metadata_len = 2;
        items[3].board_id = "c bad board!";     /* refused: an invalid board id */
        items[3].player_id = "carol";
        items[3].score = 5;
        items[4].board_id = bb2;                /* applied, without ranks */
        items[4].player_id = "bob";
        items[4].score = 20;
        items[4].skip_ranks = 1;
        items[5].board_id = bb;                 /* applied: not better, no change (BEST) */
        items[5].player_id = "alice";
        items[5].score = 29;
        memset(results, 0x5a, sizeof results);  /* every field must be written */
        EXPECT(&c, HISCORE_OK, hiscore_submit_batch(&c, items, 6, results, &refused));
        CHECK(refused == 2);
        CHECK(results[0].status == HISCORE_OK && results[0].message[0] == '\0');
        CHECK(results[0].result.created && results[0].result.changed);
        CHECK(results[0].result.entry.rank == 1 && results[0].result.previous_rank == 0);
        CHECK(strcmp(results[0].result.entry.player_id, "alice") == 0 && results[0].result.entry.score == 10);
        CHECK(results[1].status == HISCORE_INVALID_ARGUMENT && results[1].message[0] != '\0');
        CHECK(results[1].result.entry.player_id[0] == '\0' && results[1].result.entry.rank == 0 &&
              !results[1].result.created);
        CHECK(results[2].status == HISCORE_OK && !results[2].result.created && results[2].result.changed);
        CHECK(results[2].result.entry.score == 30 && results[2].result.entry.subscore == 4);
        CHECK(results[2].result.entry.rank == 1 && results[2].result.previous_rank == 1);
        CHECK(results[2].result.entry.metadata_len == 2 && memcmp(results[2].result.entry.metadata, "mb", 2) == 0);
        CHECK(results[3].status == HISCORE_INVALID_ARGUMENT && strstr(results[3].message, "board") != NULL);
        CHECK(results[4].status == HISCORE_OK && results[4].result.created && results[4].result.changed);
        CHECK(results[4].result.entry.rank == 0 && results[4].result.previous_rank == 0);
        CHECK(strcmp(results[4].result.entry.player_id, "bob") == 0 && results[4].result.entry.score == 20);
        CHECK(results[5].status == HISCORE_OK && !results[5].result.changed && !results[5].result.created);
        CHECK(results[5].result.entry.score == 30 && results[5].result.entry.rank == 1);
        EXPECT(&c, HISCORE_OK, hiscore_rank(&c, bb, "alice", HISCORE_RANK_DEFAULT, &one, &size));
        CHECK(one.score == 30 && size == 1);
        EXPECT(&c, HISCORE_OK, hiscore_rank(&c, bb2, "bob", HISCORE_RANK_DEFAULT, &one, &size));
        CHECK(one.score == 20 && one.rank == 1 && size == 1);
        EXPECT(&c, HISCORE_NOT_FOUND, hiscore_rank(&c, "c-no-such-board-y", "carol", HISCORE_RANK_DEFAULT, &one, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_submit_batch(&c, NULL, 0, NULL, &refused)); /* empty batch */
        CHECK(refused == 0);
        items[1].player_id = NULL;
        EXPECT(&c, HISCORE_ERR_ARG, hiscore_submit_batch(&c, items, 2, results, &refused));
        items[1].player_id = "dave";
        {
            /* over hello.max_batch_submits: refused locally, nothing sent */
            size_t big = (size_t)c.hello.max_batch_submits + 1, k;
            hiscore_batch_item *many = (hiscore_batch_item *)calloc(big, sizeof *many);
            hiscore_batch_result *many_res = (hiscore_batch_result *)calloc(big, sizeof *many_res);
            CHECK(many != NULL && many_res != NULL && c.hello.max_batch_submits == 1000);
            if (many != NULL && many_res != NULL) {
                for (k = 0; k < big; k++) {
                    many[k].board_id = bb;
                    many[k].player_id = "many";
                    many[k].score = (int64_t)k;
                }
                EXPECT(&c, HISCORE_RESOURCE_EXHAUSTED, hiscore_submit_batch(&c, many, big, many_res, NULL));
                CHECK(strstr(c.error, "not sent") != NULL);
                EXPECT(&c, HISCORE_OK, hiscore_submit_batch(&c, many, big - 1, many_res, &refused));
                CHECK(refused == 0 && many_res[big - 2].result.entry.score == (int64_t)(big - 2) &&
                      many_res[0].result.created && !many_res[1].result.created);
            }
            free(many);
            free(many_res);
        }

        /* entries: the ids that were not found (sorted, each once) */
        {
            const char *ids[5] = {"zed", "alice", "ghost", "many", "zed"};
            hiscore_id missing[5];
            size_t n_missing = 99;
            EXPECT(&c, HISCORE_OK, hiscore_entries_with_missing(&c, bb, ids, 5, HISCORE_RANK_DEFAULT, 0,
                                                                page_entries, 5, &n, &size, missing,
                                                                5, &n_missing));
            CHECK(n == 2 && size == 2 && strcmp(page_entries[0].player_id, "many") == 0 &&
                  strcmp(page_entries[1].player_id, "alice") == 0 && page_entries[1].rank == 2);
            CHECK(n_missing == 2 && strcmp(missing[0].id, "ghost") == 0 && strcmp(missing[1].id, "zed") == 0);
            memset(missing, 0, sizeof missing);
            EXPECT(&c, HISCORE_OK, hiscore_entries_with_missing(&c, bb, ids, 5, HISCORE_RANK_DEFAULT, 0,
                                                                page_entries, 5, &n, NULL, missing,
                                                                1, &n_missing));
            CHECK(n_missing == 2 && strcmp(missing[0].id, "ghost") == 0 && missing[1].id[0] == '\0');
            EXPECT(&c, HISCORE_OK, hiscore_entries_with_missing(&c, bb, ids, 2, HISCORE_RANK_DEFAULT, 0,
                                                                page_entries, 2, &n, NULL, NULL, 0,
                                                                &n_missing));
            CHECK(n == 1 && n_missing == 1);
            EXPECT(&c, HISCORE_ERR_ARG, hiscore_entries_with_missing(&c, bb, ids, 2, HISCORE_RANK_DEFAULT, 0,
                                                                     page_entries, 2, &n, NULL, NULL, 1,
                                                                     &n_missing));
        }

        /* remove_player: the removed entry with its rank, then it is gone */
        EXPECT(&c, HISCORE_OK, hiscore_remove_player(&c, bb, "alice", &one));
        CHECK(strcmp(one.player_id, "alice") == 0 && one.score == 30 && one.subscore == 4 && one.rank == 2);
        CHECK(one.metadata_len == 2 && memcmp(one.metadata, "mb", 2) == 0);
        EXPECT(&c, HISCORE_NOT_FOUND, hiscore_rank(&c, bb, "alice", HISCORE_RANK_DEFAULT, &one, &size));
        EXPECT(&c, HISCORE_OK, hiscore_rank(&c, bb, "many", HISCORE_RANK_DEFAULT, &one, &size));
        CHECK(one.rank == 1 && size == 1);
        EXPECT(&c, HISCORE_NOT_FOUND, hiscore_remove_player(&c, bb, "alice", NULL));
        CHECK(strstr(c.error, "NOT_FOUND") != NULL);
        EXPECT(&c, HISCORE_NOT_FOUND, hiscore_remove_player(&c, "c-no-such-board-z", "alice", NULL));
        EXPECT(&c, HISCORE_INVALID_ARGUMENT, hiscore_remove_player(&c, bb, long_pid, NULL));
        EXPECT(&c, HISCORE_ERR_ARG, hiscore_remove_player(&c, bb, NULL, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, bb, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, bb2, NULL));
    }

    /* describe_board_details and list_boards: the config as stored, paging across two pages */
    {
        char prefix[80], la[96], lb[96], lc[96];
        hiscore_board_details d, listed[100];
        hiscore_board_options opts;
        hiscore_period periods[2];
        size_t k;
        int more = -1;
        unique_name(prefix, sizeof prefix, "c-list");
        snprintf(la, sizeof la, "%s-a", prefix);
        snprintf(lb, sizeof lb, "%s-b", prefix);
        snprintf(lc, sizeof lc, "%s-c", prefix);
        memset(&cfg, 0, sizeof cfg);
        cfg.board_id = la;
        cfg.score_order = HISCORE_SORT_ASCENDING;
        cfg.subscore_order = HISCORE_SORT_ASCENDING;
        cfg.write_operator = HISCORE_OP_INCREMENT;
        cfg.rank_mode = HISCORE_RANK_COMPETITION;
        cfg.max_entries = 50;
        cfg.max_metadata_bytes = 512;
        memset(&opts, 0, sizeof opts);
        opts.client_writes = 1;
        opts.reset_period = HISCORE_RESET_MONTHLY;
        opts.minute_of_day = 30;
        opts.day_of_month = 5;
        opts.keep_periods = 3;
        EXPECT(&c, HISCORE_OK, hiscore_create_board_with(&c, &cfg, &opts));
        cfg.board_id = lb;
        cfg.score_order = HISCORE_SORT_DESCENDING;
        cfg.subscore_order = HISCORE_SORT_DESCENDING;
        cfg.write_operator = HISCORE_OP_SET;
        cfg.rank_mode = HISCORE_RANK_DENSE;
        cfg.max_entries = 0;
        cfg.max_metadata_bytes = 0;
        EXPECT(&c, HISCORE_OK, hiscore_create_board(&c, &cfg));
        EXPECT(&c, HISCORE_OK, hiscore_submit(&c, lc, "p", 7, 0, NULL, 0, NULL)); /* auto-created */
        EXPECT(&c, HISCORE_OK, hiscore_submit(&c, la, "p", 7, 0, NULL, 0, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_submit(&c, la, "p", 5, 0, NULL, 0, NULL)); /* INCREMENT */

        memset(&d, 0x5a, sizeof d);
        EXPECT(&c, HISCORE_OK, hiscore_describe_board_details(&c, la, &d, periods, 2));
        CHECK(strcmp(d.board_id, la) == 0);
        CHECK(d.score_order == HISCORE_SORT_ASCENDING && d.subscore_order == HISCORE_SORT_ASCENDING);
        CHECK(d.write_operator == HISCORE_OP_INCREMENT && d.rank_mode == HISCORE_RANK_COMPETITION);
        CHECK(d.max_entries == 50 && d.max_metadata_bytes == 512);
        CHECK(d.options.client_writes == 1 && d.options.reset_period == HISCORE_RESET_MONTHLY);
        CHECK(d.options.minute_of_day == 30 && d.options.day_of_month == 5 && d.options.weekday == 0 &&
              d.options.keep_periods == 3);
        CHECK(d.info.size == 1 && d.info.version == 2 && d.info.n_periods == 0 && d.info.client_writes == 1);
        CHECK(d.info.reset_period == HISCORE_RESET_MONTHLY && d.info.current_period_started_at_us > 0);
        EXPECT(&c, HISCORE_OK, hiscore_rank(&c, la, "p", HISCORE_RANK_DEFAULT, &one, NULL));
        CHECK(one.score == 12);
        memset(&d, 0x5a, sizeof d);
        EXPECT(&c, HISCORE_OK, hiscore_describe_board_details(&c, lb, &d, NULL, 0));
        CHECK(strcmp(d.board_id, lb) == 0 && d.score_order == HISCORE_SORT_DESCENDING &&
              d.write_operator == HISCORE_OP_SET && d.rank_mode == HISCORE_RANK_DENSE);
        CHECK(d.max_entries == 0 && d.options.client_writes == 0 &&
              d.options.reset_period == HISCORE_RESET_NONE && d.options.keep_periods == 0);
        CHECK(d.info.size == 0);
        EXPECT(&c, HISCORE_NOT_FOUND, hiscore_describe_board_details(&c, "c-no-such-board-w", &d, NULL, 0));
        EXPECT(&c, HISCORE_ERR_ARG, hiscore_describe_board_details(&c, la, NULL, NULL, 0));

        /* page 1: the two boards after the prefix, more to come */
        memset(listed, 0x5a, sizeof listed);
        EXPECT(&c, HISCORE_OK, hiscore_list_boards(&c, prefix, 2, listed, 2, &n, &more));
        CHECK(n == 2 && more == 1);
        CHECK(strcmp(listed[0].board_id, la) == 0 && strcmp(listed[1].board_id, lb) == 0);
        CHECK(listed[0].score_order == HISCORE_SORT_ASCENDING && listed[0].write_operator == HISCORE_OP_INCREMENT &&
              listed[0].rank_mode == HISCORE_RANK_COMPETITION && listed[0].max_entries == 50 &&
              listed[0].max_metadata_bytes == 512 && listed[0].options.reset_period == HISCORE_RESET_MONTHLY &&
              listed[0].options.day_of_month == 5 && listed[0].info.size == 1);
        CHECK(listed[1].write_operator == HISCORE_OP_SET && listed[1].rank_mode == HISCORE_RANK_DENSE &&
              listed[1].info.size == 0);
        /* page 2: continues after the last board of page 1 */
        EXPECT(&c, HISCORE_OK, hiscore_list_boards(&c, listed[1].board_id, 2, listed, 2, &n, &more));
        CHECK(n >= 1 && strcmp(listed[0].board_id, lc) == 0 && listed[0].info.size == 1);
        CHECK(listed[0].write_operator == HISCORE_OP_BEST && listed[0].score_order == HISCORE_SORT_DESCENDING);
        CHECK(listed[0].rank_mode == HISCORE_RANK_DEFAULT && listed[0].max_metadata_bytes == 0 &&
              listed[0].max_entries == 0 && listed[0].info.current_period_id == 0); /* stored as sent */
        /* the whole list, 100 at a time (limit 0), holds all three, in order */
        {
            char after[HISCORE_MAX_ID_BYTES + 1] = "";
            int seen = 0, pages = 0;
            do {
                EXPECT(&c, HISCORE_OK, hiscore_list_boards(&c, after, 0, listed, 100, &n, &more));
                for (k = 0; k < n; k++) {
                    if (k > 0) CHECK(strcmp(listed[k - 1].board_id, listed[k].board_id) < 0);
                    if (strcmp(listed[k].board_id, la) == 0) seen |= 1;
                    if (strcmp(listed[k].board_id, lb) == 0) seen |= 2;
                    if (strcmp(listed[k].board_id, lc) == 0) seen |= 4;
                }
                if (n > 0) snprintf(after, sizeof after, "%s", listed[n - 1].board_id);
                pages++;
            } while (more && n > 0 && c.last_status == HISCORE_OK && pages < 100);
            CHECK(seen == 7 && !more);
        }
        EXPECT(&c, HISCORE_ERR_ARG, hiscore_list_boards(&c, NULL, 0, listed, 99, &n, &more));
        EXPECT(&c, HISCORE_ERR_ARG, hiscore_list_boards(&c, NULL, 3, listed, 2, &n, &more));
        EXPECT(&c, HISCORE_ERR_ARG, hiscore_list_boards(&c, NULL, 1, NULL, 1, &n, &more));
        {
            hiscore_board_details *lots = (hiscore_board_details *)calloc(1001, sizeof *lots);
            CHECK(lots != NULL);
            if (lots != NULL)
                EXPECT(&c, HISCORE_OUT_OF_RANGE, hiscore_list_boards(&c, NULL, 1001, lots, 1001, &n, &more));
            free(lots);
        }
        EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, la, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, lb, NULL));
        EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, lc, NULL));
    }

    /* authenticate: this server has no keys (open, loopback): any token is the admin */
    {
        hiscore_auth_info ai;
        hiscore_id boards[2];
        memset(&ai, 0x5a, sizeof ai);
        EXPECT(&c, HISCORE_OK, hiscore_authenticate(&c, "any-token", &ai, boards, 2));
        CHECK(ai.role == HISCORE_ROLE_ADMIN && ai.player_id[0] == '\0' && ai.n_boards == 0 && ai.expires_at == 0);
        EXPECT(&c, HISCORE_OK, hiscore_authenticate(&c, "", NULL, NULL, 0));
        EXPECT(&c, HISCORE_ERR_ARG, hiscore_authenticate(&c, NULL, &ai, NULL, 0));
    }

    /* backup (the server's machine is this one only on loopback): into an empty directory,
     * then refused into the same, now non-empty one */
    if (strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0) {
        char dir[] = "/tmp/hiscore-c-backup.XXXXXX", cmd[64];
        uint64_t files = 0, linked = 0, bytes = 0;
        if (mkdtemp(dir) == NULL) {
            CHECK(!"mkdtemp");
        } else {
            EXPECT(&c, HISCORE_OK, hiscore_backup(&c, dir, &files, &linked, &bytes));
            CHECK(files > 0 && linked <= files);
            EXPECT(&c, HISCORE_FAILED_PRECONDITION, hiscore_backup(&c, dir, &files, NULL, NULL));
            EXPECT(&c, HISCORE_INVALID_ARGUMENT, hiscore_backup(&c, "", NULL, NULL, NULL));
            EXPECT(&c, HISCORE_ERR_ARG, hiscore_backup(&c, NULL, NULL, NULL, NULL));
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            CHECK(system(cmd) == 0);
        }
    }

    /* one connection holds as many subscriptions as the server allows (max_subscriptions: 1000
     * by default; the client stopped at 64): a change reaches the last one, and one more is
     * refused locally, unsent */
    {
        hiscore_client cs;
        hiscore_subscribe_query sq;
        hiscore_event ev;
        char many[96], player[32];
        uint64_t *subs, extra = 0;
        size_t want, opened = 0, polled = 0;
        int found = 0;
        unique_name(many, sizeof many, "c-many-subs");
        EXPECT(&cs, HISCORE_OK, hiscore_connect(&cs, host, port, 10000));
        want = cs.hello.max_subscriptions; /* the server's default: 1000 */
        CHECK(want > 64 && want == HISCORE_MAX_SUBSCRIPTIONS);
        subs = (uint64_t *)calloc(want > 0 ? want : 1, sizeof *subs);
        CHECK(subs != NULL);
        EXPECT(&cs, HISCORE_OK, hiscore_submit(&cs, many, "seed", 0, 0, NULL, 0, NULL));
        memset(&sq, 0, sizeof sq);
        sq.board_id = many;
        sq.target = HISCORE_SUB_PLAYER;
        sq.player_id = player;
        st = HISCORE_OK;
        while (subs != NULL && opened < want) {
            snprintf(player, sizeof player, "p%zu", opened); /* not on the board yet */
            st = hiscore_subscribe(&cs, &sq, &subs[opened]);
            if (st != HISCORE_OK) break;
            opened++;
        }
        CHECK(opened == want && cs.n_subs == want);
        if (st != HISCORE_OK)
            fprintf(stderr, "subscription %zu of %zu: %s (%s)\n", opened + 1, want,
                    hiscore_status_name(st), cs.error);
        EXPECT(&cs, HISCORE_RESOURCE_EXHAUSTED, hiscore_subscribe(&cs, &sq, &extra));
        CHECK(strstr(cs.error, "HISCORE_MAX_SUBSCRIPTIONS") != NULL && cs.n_subs == opened);
        if (opened > 0) {
            /* the last subscription's player joins the board: its event comes after the
             * snapshots queued by hiscore_subscribe */
            snprintf(player, sizeof player, "p%zu", opened - 1);
            EXPECT(&cs, HISCORE_OK, hiscore_submit(&cs, many, player, 5, 0, NULL, 0, NULL));
            memset(&ev, 0, sizeof ev);
            while (!found && polled++ < opened + 10 && hiscore_poll_event(&cs, 5000, &ev) == HISCORE_OK)
                found = ev.subscription_id == subs[opened - 1] && !ev.snapshot &&
                        ev.type == HISCORE_EVENT_PLAYER;
            CHECK(found && ev.present && ev.entry.rank == 1 && strcmp(ev.entry.player_id, player) == 0);
            if (!found) fprintf(stderr, "no event for subscription %zu: %s\n", opened, cs.error);
        }
        hiscore_close(&cs); /* ends its streams on the server */
        free(subs);
        EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, many, NULL));
    }

    /* cleanup */
    EXPECT(&c, HISCORE_OK, hiscore_delete_board(&c, asc, &removed));
    CHECK(removed == 4);
    EXPECT(&c, HISCORE_NOT_FOUND, hiscore_delete_board(&c, asc, &removed));
    hiscore_close(&c);
    EXPECT(&c, HISCORE_ERR_CLOSED, hiscore_ping(&c, NULL, 0, NULL, 0, &n));
    hiscore_close(&c);

    /* reconnecting on the same struct after hiscore_close: nothing of the old connection stays
     * (run under -fsanitize=address, a leak or double free shows here) */
    {
        hiscore_subscribe_query sq;
        hiscore_event ev;
        uint64_t sub = 0;
        memset(&sq, 0, sizeof sq);
        sq.board_id = board;
        sq.target = HISCORE_SUB_TOP;
        sq.top = 3;
        EXPECT(&c, HISCORE_OK, hiscore_connect(&c, host, port, 10000));
        EXPECT(&c, HISCORE_OK, hiscore_subscribe(&c, &sq, &sub)); /* its snapshot stays queued */
        CHECK(c.queue_len == 1 && c.n_subs == 1 && c.rbuf != NULL);
        hiscore_close(&c);
        CHECK(c.fd == -1 && c.queue_len == 0 && c.n_subs == 0 && c.rbuf == NULL && c.tls == NULL);
        EXPECT(&c, HISCORE_OK, hiscore_connect(&c, host, port, 10000));
        memset(&ev, 0, sizeof ev);
        EXPECT(&c, HISCORE_ERR_NO_EVENT, hiscore_poll_event(&c, 0, &ev));
        EXPECT(&c, HISCORE_OK, hiscore_ping(&c, NULL, 0, NULL, 0, &n));
        hiscore_close(&c);
    }

    /* connect failures */
    st = hiscore_connect(&c2, "127.0.0.1", 1, 2000); /* nothing listens on port 1 */
    CHECK(st == HISCORE_ERR_IO || st == HISCORE_ERR_TIMEOUT);
    CHECK(c2.error[0] != '\0');
    hiscore_close(&c2);
    free(page_entries);
}

/* ------------------------------------------------------------------------------------------ */
/* Streaming and local timeouts against a fake server (a forked child speaking the protocol):
 * the server version under test answers subscribe with UNIMPLEMENTED. */

static int read_exact(int fd, uint8_t *buf, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, buf, n);
        if (r <= 0) return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

static Hiscore__V1__Request *fake_recv(int fd) {
    uint8_t header[5], body[4096];
    uint32_t len;
    if (read_exact(fd, header, 5) != 0 || hiscore_frame_header_decode(header, sizeof body, &len) != 0 ||
        read_exact(fd, body, len) != 0)
        return NULL;
    return hiscore__v1__request__unpack(NULL, len, body);
}

static void fake_send(int fd, const Hiscore__V1__Response *r) {
    uint8_t buf[4096];
    size_t n = hiscore__v1__response__pack(r, buf + 5);
    hiscore_frame_header_encode(buf, (uint32_t)n);
    if (write(fd, buf, n + 5) != (ssize_t)(n + 5)) _exit(20);
}

/* A token the size of a player token naming several boards (mint-token: ~280 bytes for five). */
#define FAKE_TOKEN_BYTES 1000

#define FAKE_EXPECT(cond, code)                                                                  \
    do {                                                                                         \
        if (!(cond)) _exit(code);                                                                \
    } while (0)

/* Accepts the client's connection, checks its preface and sends a hello; the connection's fd. */
static int fake_accept_hello(int lfd) {
    Hiscore__V1__Response hello_r = HISCORE__V1__RESPONSE__INIT;
    Hiscore__V1__ServerHello hello = HISCORE__V1__SERVER_HELLO__INIT;
    uint8_t preface[8];
    int fd = accept(lfd, NULL, NULL);
    FAKE_EXPECT(fd >= 0, 2);
    FAKE_EXPECT(read_exact(fd, preface, 8) == 0 && memcmp(preface, HISCORE_PREFACE, 8) == 0, 3);
    hello.protocol_version = 1;
    hello.server_version = (char *)"fake";
    hello.max_frame_bytes = 1048576;
    hello_r.result_case = HISCORE__V1__RESPONSE__RESULT_HELLO;
    hello_r.hello = &hello;
    fake_send(fd, &hello_r);
    return fd;
}

static void fake_server_main(int lfd) {
    Hiscore__V1__Response r;
    Hiscore__V1__RankEvent ev = HISCORE__V1__RANK_EVENT__INIT;
    Hiscore__V1__PlayerRankChange pc = HISCORE__V1__PLAYER_RANK_CHANGE__INIT;
    Hiscore__V1__WindowUpdate wu = HISCORE__V1__WINDOW_UPDATE__INIT;
    Hiscore__V1__WindowChange ch = HISCORE__V1__WINDOW_CHANGE__INIT;
    Hiscore__V1__Entry e1 = HISCORE__V1__ENTRY__INIT, e2 = HISCORE__V1__ENTRY__INIT;
    Hiscore__V1__Entry *entries[2];
    Hiscore__V1__WindowChange *changes[1];
    Hiscore__V1__PingResponse pong = HISCORE__V1__PING_RESPONSE__INIT;
    Hiscore__V1__CancelResponse cr = HISCORE__V1__CANCEL_RESPONSE__INIT;
    Hiscore__V1__Status cancelled = HISCORE__V1__STATUS__INIT;
    Hiscore__V1__Request *sub, *ping, *rank, *cancel1, *cancel2, *auth, *batch;
    Hiscore__V1__AuthenticateResponse ar = HISCORE__V1__AUTHENTICATE_RESPONSE__INIT;
    char *auth_boards[3] = {(char *)"b1", (char *)"b2", (char *)"b3"};
    Hiscore__V1__SubmitBatchResponse bresp = HISCORE__V1__SUBMIT_BATCH_RESPONSE__INIT;
    Hiscore__V1__SubmitResult one_result = HISCORE__V1__SUBMIT_RESULT__INIT;
    Hiscore__V1__SubmitResult *sres[1];
    int fd = fake_accept_hello(lfd);

    sub = fake_recv(fd);
    FAKE_EXPECT(sub != NULL && sub->method_case == HISCORE__V1__REQUEST__METHOD_SUBSCRIBE, 4);
    FAKE_EXPECT(sub->subscribe->target_case == HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_TOP && sub->subscribe->top == 2, 5);
    e1.player_id = (char *)"alice";
    e1.score = 300;
    e1.rank = 1;
    e2.player_id = (char *)"bob";
    e2.score = 200;
    e2.rank = 2;
    pc.entry = &e1;
    pc.present = 1;
    ev.board_version = 7;
    ev.snapshot = 1;
    ev.change_case = HISCORE__V1__RANK_EVENT__CHANGE_PLAYER;
    ev.player = &pc;
    r = (Hiscore__V1__Response)HISCORE__V1__RESPONSE__INIT;
    r.call_id = sub->call_id;
    r.result_case = HISCORE__V1__RESPONSE__RESULT_EVENT;
    r.event = &ev;
    fake_send(fd, &r);

    ping = fake_recv(fd); /* an event arrives while the ping waits: queued by the client */
    FAKE_EXPECT(ping != NULL && ping->method_case == HISCORE__V1__REQUEST__METHOD_PING, 6);
    /* a player token longer than 255 bytes (a JWT naming a few boards) goes out whole */
    FAKE_EXPECT(strlen(ping->auth_token) == FAKE_TOKEN_BYTES && ping->auth_token[0] == 'e' &&
                    ping->auth_token[FAKE_TOKEN_BYTES - 1] == 'z', 10);
    entries[0] = &e1;
    entries[1] = &e2;
    ch.kind = HISCORE__V1__WINDOW_CHANGE_KIND__WINDOW_CHANGE_KIND_MOVED;
    ch.entry = &e2;
    ch.position = 1;
    changes[0] = &ch;
    wu.n_entries = 2;
    wu.entries = entries;
    wu.n_changes = 1;
    wu.changes = changes;
    wu.window_size = 2;
    ev.snapshot = 0;
    ev.board_version = 8;
    ev.change_case = HISCORE__V1__RANK_EVENT__CHANGE_WINDOW;
    ev.window = &wu;
    fake_send(fd, &r);
    r = (Hiscore__V1__Response)HISCORE__V1__RESPONSE__INIT;
    r.call_id = ping->call_id;
    r.result_case = HISCORE__V1__RESPONSE__RESULT_PING;
    r.ping = &pong;
    fake_send(fd, &r);

    rank = fake_recv(fd); /* never answered: the client times out and cancels it */
    FAKE_EXPECT(rank != NULL && rank->method_case == HISCORE__V1__REQUEST__METHOD_GET_RANK, 7);
    cancel1 = fake_recv(fd);
    FAKE_EXPECT(cancel1 != NULL && cancel1->method_case == HISCORE__V1__REQUEST__METHOD_CANCEL &&
                    cancel1->cancel->call_id == rank->call_id, 8);
    cancelled.code = HISCORE__V1__STATUS_CODE__STATUS_CODE_CANCELLED;
    cancelled.message = (char *)"cancelled";
    r = (Hiscore__V1__Response)HISCORE__V1__RESPONSE__INIT;
    r.call_id = rank->call_id; /* late answers: the client drops them */
    r.status = &cancelled;
    fake_send(fd, &r);
    r.call_id = cancel1->call_id;
    r.status = NULL;
    r.result_case = HISCORE__V1__RESPONSE__RESULT_CANCEL;
    cr.cancelled = 1;
    r.cancel = &cr;
    fake_send(fd, &r);

    cancel2 = fake_recv(fd); /* hiscore_unsubscribe */
    FAKE_EXPECT(cancel2 != NULL && cancel2->method_case == HISCORE__V1__REQUEST__METHOD_CANCEL &&
                    cancel2->cancel->call_id == sub->call_id, 9);
    r.call_id = cancel2->call_id;
    fake_send(fd, &r);
    r = (Hiscore__V1__Response)HISCORE__V1__RESPONSE__INIT;
    r.call_id = sub->call_id;
    r.status = &cancelled;
    fake_send(fd, &r);

    auth = fake_recv(fd); /* hiscore_authenticate with a player token: every field comes back */
    FAKE_EXPECT(auth != NULL && auth->method_case == HISCORE__V1__REQUEST__METHOD_AUTHENTICATE &&
                    strcmp(auth->authenticate->token, "player-token") == 0, 11);
    ar.role = HISCORE__V1__ROLE__ROLE_PLAYER;
    ar.player_id = (char *)"p7";
    ar.n_boards = 3;
    ar.boards = auth_boards;
    ar.expires_at = 1234567890;
    r = (Hiscore__V1__Response)HISCORE__V1__RESPONSE__INIT;
    r.call_id = auth->call_id;
    r.result_case = HISCORE__V1__RESPONSE__RESULT_AUTHENTICATE;
    r.authenticate = &ar;
    fake_send(fd, &r);

    batch = fake_recv(fd); /* a batch of 2 answered with 1 result: the client refuses it */
    FAKE_EXPECT(batch != NULL && batch->method_case == HISCORE__V1__REQUEST__METHOD_SUBMIT_BATCH &&
                    batch->submit_batch->n_submits == 2, 12);
    FAKE_EXPECT(strcmp(batch->submit_batch->submits[0]->board_id, "b") == 0 &&
                    strcmp(batch->submit_batch->submits[1]->player_id, "y") == 0 &&
                    batch->submit_batch->submits[1]->score == -3 &&
                    batch->submit_batch->submits[1]->subscore == 9 &&
                    batch->submit_batch->submits[1]->skip_ranks &&
                    !batch->submit_batch->submits[0]->skip_ranks, 13);
    FAKE_EXPECT(batch->submit_batch->submits[0]->metadata_value_case ==
                        HISCORE__V1__SUBMIT_REQUEST__METADATA_VALUE__NOT_SET &&
                    batch->submit_batch->submits[1]->metadata_value_case ==
                        HISCORE__V1__SUBMIT_REQUEST__METADATA_VALUE_METADATA &&
                    batch->submit_batch->submits[1]->metadata.len == 0, 14);
    sres[0] = &one_result;
    bresp.n_results = 1;
    bresp.results = sres;
    r = (Hiscore__V1__Response)HISCORE__V1__RESPONSE__INIT;
    r.call_id = batch->call_id;
    r.result_case = HISCORE__V1__RESPONSE__RESULT_SUBMIT_BATCH;
    r.submit_batch = &bresp;
    fake_send(fd, &r);
    close(fd);
    /* freed so that the whole program runs clean under valgrind --leak-check=full */
    hiscore__v1__request__free_unpacked(auth, NULL);
    hiscore__v1__request__free_unpacked(batch, NULL);
    hiscore__v1__request__free_unpacked(sub, NULL);
    hiscore__v1__request__free_unpacked(ping, NULL);
    hiscore__v1__request__free_unpacked(rank, NULL);
    hiscore__v1__request__free_unpacked(cancel1, NULL);
    hiscore__v1__request__free_unpacked(cancel2, NULL);
    _exit(0);
}

/* Listen on an ephemeral loopback port and fork a child running serve(listening fd); returns
 * the child's pid and sets *port. */
static pid_t fork_fake_server(void (*serve)(int lfd), uint16_t *port) {
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    pid_t pid;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(lfd, 1) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&addr, &alen) == 0);
    fflush(NULL);
    pid = fork();
    if (pid == 0) serve(lfd);
    close(lfd);
    CHECK(pid > 0);
    *port = ntohs(addr.sin_port);
    return pid;
}

static void run_fake_stream(void) {
    hiscore_client c;
    hiscore_subscribe_query sq;
    hiscore_event_item items[4];
    hiscore_event ev;
    hiscore_entry one;
    uint64_t sub = 0;
    size_t n = 0;
    int status = 0, st;
    uint16_t port = 0;
    pid_t pid = fork_fake_server(fake_server_main, &port);

    EXPECT(&c, HISCORE_OK, hiscore_connect(&c, "127.0.0.1", port, 5000));
    CHECK(strcmp(c.hello.server_version, "fake") == 0);
    memset(&sq, 0, sizeof sq);
    sq.board_id = "b";
    sq.target = HISCORE_SUB_TOP;
    sq.top = 2;
    EXPECT(&c, HISCORE_OK, hiscore_subscribe(&c, &sq, &sub));
    ev.items = items;
    ev.items_cap = 4;
    EXPECT(&c, HISCORE_OK, hiscore_poll_event(&c, 1000, &ev));
    CHECK(ev.subscription_id == sub && ev.type == HISCORE_EVENT_PLAYER && ev.snapshot);
    CHECK(ev.present && ev.entry.rank == 1 && strcmp(ev.entry.player_id, "alice") == 0 && ev.board_version == 7);
    {
        /* tokens up to the server's 4096 bytes are kept whole; longer ones are refused */
        static char token[HISCORE_MAX_TOKEN_BYTES + 2];
        memset(token, 'x', sizeof token - 1);
        token[sizeof token - 1] = '\0';
        EXPECT(&c, HISCORE_ERR_ARG, hiscore_set_auth_token(&c, token));
        token[HISCORE_MAX_TOKEN_BYTES] = '\0';
        EXPECT(&c, HISCORE_OK, hiscore_set_auth_token(&c, token));
        CHECK(strlen(c.auth_token) == HISCORE_MAX_TOKEN_BYTES);
        token[0] = 'e';
        token[FAKE_TOKEN_BYTES - 1] = 'z';
        token[FAKE_TOKEN_BYTES] = '\0';
        EXPECT(&c, HISCORE_OK, hiscore_set_auth_token(&c, token));
    }
    EXPECT(&c, HISCORE_OK, hiscore_ping(&c, NULL, 0, NULL, 0, &n));
    EXPECT(&c, HISCORE_OK, hiscore_set_auth_token(&c, NULL));
    EXPECT(&c, HISCORE_OK, hiscore_poll_event(&c, 1000, &ev)); /* queued during the ping */
    CHECK(ev.type == HISCORE_EVENT_WINDOW && !ev.snapshot && ev.window_size == 2);
    CHECK(ev.n_items == 3 && ev.total_items == 3 && ev.items == items);
    CHECK(items[0].kind == 0 && strcmp(items[1].entry.player_id, "bob") == 0);
    CHECK(items[2].kind == HISCORE_WINDOW_MOVED && items[2].position == 1);
    c.timeout_ms = 300;
    EXPECT(&c, HISCORE_ERR_TIMEOUT, hiscore_rank(&c, "b", "x", HISCORE_RANK_DEFAULT, &one, NULL));
    c.timeout_ms = 5000;
    EXPECT(&c, HISCORE_OK, hiscore_unsubscribe(&c, sub));
    EXPECT(&c, HISCORE_OK, hiscore_poll_event(&c, 1000, &ev));
    CHECK(ev.type == HISCORE_EVENT_END && ev.final_status == HISCORE_CANCELLED && ev.subscription_id == sub);
    {
        hiscore_auth_info ai;
        hiscore_id boards[2];
        hiscore_batch_item bitems[2];
        hiscore_batch_result results[2];
        size_t refused = 7;
        memset(&ai, 0x5a, sizeof ai);
        memset(boards, 0, sizeof boards);
        EXPECT(&c, HISCORE_OK, hiscore_authenticate(&c, "player-token", &ai, boards, 2));
        CHECK(ai.role == HISCORE_ROLE_PLAYER && strcmp(ai.player_id, "p7") == 0);
        CHECK(ai.expires_at == 1234567890 && ai.n_boards == 3);
        CHECK(strcmp(boards[0].id, "b1") == 0 && strcmp(boards[1].id, "b2") == 0); /* cap 2 of 3 */
        memset(bitems, 0, sizeof bitems);
        bitems[0].board_id = "b";
        bitems[0].player_id = "x";
        bitems[1].board_id = "b";
        bitems[1].player_id = "y";
        bitems[1].score = -3;
        bitems[1].subscore = 9;
        bitems[1].metadata = (const uint8_t *)""; /* empty metadata, not "keep" */
        bitems[1].skip_ranks = 1;
        EXPECT(&c, HISCORE_ERR_PROTOCOL, hiscore_submit_batch(&c, bitems, 2, results, &refused));
        CHECK(refused == 0 && strstr(c.error, "1 results for 2 items") != NULL);
    }
    st = hiscore_poll_event(&c, 1000, &ev); /* the fake closed the connection */
    CHECK(st == HISCORE_ERR_IO);
    hiscore_close(&c);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "fake server exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("fake-server stream test: done\n");
}

/* A fake server that answers the first call with a connection-level error frame (call_id 0,
 * UNAUTHENTICATED: what the server's authentication timeout sends) and closes. */
static void fake_connection_error_main(int lfd) {
    Hiscore__V1__Response r = HISCORE__V1__RESPONSE__INIT;
    Hiscore__V1__Status unauthenticated = HISCORE__V1__STATUS__INIT;
    Hiscore__V1__Request *ping;
    int fd = fake_accept_hello(lfd);
    ping = fake_recv(fd);
    FAKE_EXPECT(ping != NULL && ping->method_case == HISCORE__V1__REQUEST__METHOD_PING, 4);
    unauthenticated.code = HISCORE__V1__STATUS_CODE__STATUS_CODE_UNAUTHENTICATED;
    unauthenticated.message = (char *)"no valid credential within the authentication timeout";
    r.call_id = 0;
    r.status = &unauthenticated;
    fake_send(fd, &r);
    close(fd);
    hiscore__v1__request__free_unpacked(ping, NULL);
    _exit(0);
}

/* A connection-level error frame comes back as the server's own code (not UNAVAILABLE, as the
 * Python client reports it), with the connection closed (c->fd == -1) and c->error saying so:
 * what hiscore.h and docs/clients.md describe. */
static void run_fake_connection_error(void) {
    hiscore_client c;
    size_t n = 0;
    int status = 0;
    uint16_t port = 0;
    pid_t pid = fork_fake_server(fake_connection_error_main, &port);
    EXPECT(&c, HISCORE_OK, hiscore_connect(&c, "127.0.0.1", port, 5000));
    EXPECT(&c, HISCORE_UNAUTHENTICATED, hiscore_ping(&c, NULL, 0, NULL, 0, &n));
    CHECK(c.fd == -1 && c.last_status == HISCORE_UNAUTHENTICATED);
    CHECK(strcmp(c.error, "connection-level error UNAUTHENTICATED: no valid credential within the "
                          "authentication timeout") == 0);
    EXPECT(&c, HISCORE_ERR_CLOSED, hiscore_ping(&c, NULL, 0, NULL, 0, &n));
    hiscore_close(&c);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "fake server exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("fake-server connection-level error test: done\n");
}

/* A fake HTTP server, as hiscored's admin port is: it answers the preface with an HTTP error. */
static void fake_http_main(int lfd) {
    static const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    uint8_t preface[8];
    int fd = accept(lfd, NULL, NULL);
    FAKE_EXPECT(fd >= 0, 2);
    FAKE_EXPECT(read_exact(fd, preface, 8) == 0, 3);
    FAKE_EXPECT(write(fd, answer, sizeof answer - 1) == (ssize_t)(sizeof answer - 1), 4);
    close(fd);
    _exit(0);
}

/* Pointed at an HTTP port (hiscored's admin port), the client says so instead of only "bad
 * frame header (flag 72)". */
static void run_fake_http_port(void) {
    hiscore_client c;
    int status = 0;
    uint16_t port = 0;
    pid_t pid = fork_fake_server(fake_http_main, &port);
    CHECK(hiscore_connect(&c, "127.0.0.1", port, 5000) == HISCORE_ERR_PROTOCOL);
    CHECK(strstr(c.error, "admin port?") != NULL);
    if (strstr(c.error, "admin port?") == NULL) fprintf(stderr, "error: %s\n", c.error);
    hiscore_close(&c);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("fake HTTP port test: done\n");
}

int main(int argc, char **argv) {
    const char *vectors = argc > 1 ? argv[1] : "../testdata/vectors.txt";
    const char *port_s = argc > 2 && argv[2][0] ? argv[2] : getenv("HISCORE_PORT");
    const char *host = getenv("HISCORE_HOST") ? getenv("HISCORE_HOST") : "127.0.0.1";
    const char *require = getenv("HISCORE_REQUIRE_SERVER");
    run_vectors(vectors);
    run_fake_stream();
    run_fake_connection_error();
    run_fake_http_port();
    if (port_s != NULL && port_s[0] != '\0') {
        run_e2e(host, (uint16_t)atoi(port_s));
        printf("end to end: done against %s:%s\n", host, port_s);
    } else if (require != NULL && strcmp(require, "1") == 0) {
        fprintf(stderr, "no server port given (argv[2] or HISCORE_PORT)\n");
        failures++;
    } else {
        printf("end to end: skipped (no port)\n");
    }
    printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
