/*
 * hiscore.h: a small blocking C99 client for the Hiscore wire protocol v1 (docs/protocol.md).
 *
 * - One hiscore_client per connection; no global state. A client is not thread-safe: use one
 *   per thread (or lock around it).
 * - Every function returns a status: HISCORE_OK (0), a gRPC status code the server answered
 *   (1..16, HISCORE_NOT_FOUND etc.), or a negative HISCORE_ERR_* for local failures. On failure
 *   c->error holds a human-readable message and c->last_status the code.
 * - Results go to caller-provided structs and arrays; nothing is allocated for the caller. Every
 *   result list is bounded by the caller's array (its cap, or the count the server may answer:
 *   see each function) and every string by a fixed buffer (ids: HISCORE_MAX_ID_BYTES, messages:
 *   HISCORE_ERROR_SIZE - 1 bytes, truncated).
 * - Calls are sequential (one unary call at a time). Subscription events that arrive while a
 *   call waits are queued inside the client and returned by hiscore_poll_event.
 * - Link with libhiscore.a and -lprotobuf-c (and -lssl -lcrypto: TLS, unless built with TLS=0).
 * - The client never reconnects. The connection is gone when a call returns HISCORE_ERR_IO,
 *   HISCORE_ERR_PROTOCOL, HISCORE_ERR_TLS or HISCORE_ERR_CLOSED, or any status with c->fd == -1:
 *   a connection-level error frame from the server comes back as its own code and message (e.g.
 *   HISCORE_UNAUTHENTICATED after the server's authentication timeout, c->error starting with
 *   "connection-level error"; not HISCORE_UNAVAILABLE, which the Python client reports for it:
 *   docs/clients.md, "Errors"), and a request that could not be written within the timeout closes
 *   the connection too (HISCORE_ERR_TIMEOUT). Then hiscore_close and hiscore_connect again; a
 *   write that failed that way may or may not have been applied. The server also closes
 *   connections idle for --idle-timeout (300 s by default: no call in flight, no subscription):
 *   a long-lived client that may sit idle longer pings more often or reconnects on ERR_IO.
 */
#ifndef HISCORE_H
#define HISCORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC status codes as answered by the server (hiscore.v1.StatusCode). */
enum {
    HISCORE_OK = 0,
    HISCORE_CANCELLED = 1,
    HISCORE_UNKNOWN = 2,
    HISCORE_INVALID_ARGUMENT = 3,
    HISCORE_DEADLINE_EXCEEDED = 4,
    HISCORE_NOT_FOUND = 5,
    HISCORE_ALREADY_EXISTS = 6,
    HISCORE_PERMISSION_DENIED = 7,
    HISCORE_RESOURCE_EXHAUSTED = 8,
    HISCORE_FAILED_PRECONDITION = 9,
    HISCORE_ABORTED = 10,
    HISCORE_OUT_OF_RANGE = 11,
    HISCORE_UNIMPLEMENTED = 12,
    HISCORE_INTERNAL = 13,
    HISCORE_UNAVAILABLE = 14,
    HISCORE_DATA_LOSS = 15,
    HISCORE_UNAUTHENTICATED = 16
};

/* Local errors (negative). */
enum {
    HISCORE_ERR_IO = -1,       /* socket error or the connection closed */
    HISCORE_ERR_TIMEOUT = -2,  /* no answer within the local timeout (the call is cancelled) */
    HISCORE_ERR_CLOSED = -3,   /* the client is not connected */
    HISCORE_ERR_PROTOCOL = -4, /* the server broke the framing or sent an undecodable frame */
    HISCORE_ERR_ARG = -5,      /* invalid argument (NULL, too long, array too small) */
    HISCORE_ERR_NOMEM = -6,    /* allocation failed or an internal queue is full */
    HISCORE_ERR_NO_EVENT = -7, /* hiscore_poll_event: nothing arrived within the timeout */
    HISCORE_ERR_TLS = -8       /* TLS: a file that cannot be loaded, a failed handshake or an
                                  untrusted server certificate (or the library built with TLS=0) */
};

/* Enums of hiscore.proto (wire values). */
enum { HISCORE_SORT_DESCENDING = 0, HISCORE_SORT_ASCENDING = 1 };
enum { HISCORE_OP_BEST = 0, HISCORE_OP_SET = 1, HISCORE_OP_INCREMENT = 2, HISCORE_OP_DECREMENT = 3 };
enum {
    HISCORE_RANK_DEFAULT = 0,
    HISCORE_RANK_ORDINAL = 1,
    HISCORE_RANK_COMPETITION = 2,
    HISCORE_RANK_DENSE = 3
};

#define HISCORE_DEFAULT_PORT 7450
#define HISCORE_PREFACE_SIZE 8
#define HISCORE_FRAME_HEADER_SIZE 5
#define HISCORE_MAX_ID_BYTES 128
#define HISCORE_ERROR_SIZE 256
#define HISCORE_CURSOR_MAX 512
/* Longest auth token (API key or player token) the server accepts, and so hiscore_client keeps. */
#define HISCORE_MAX_TOKEN_BYTES 4096
/* Metadata bytes kept per hiscore_entry (longer metadata is truncated, see metadata_len; the
 * full bytes are in the Entry of a hiscore_call response). Part of the ABI: it sizes
 * hiscore_entry, which libhiscore.a fills in, so it is fixed; a library built with one value and
 * an application with another would write past the application's arrays. */
#ifdef HISCORE_ENTRY_METADATA_MAX
#error "HISCORE_ENTRY_METADATA_MAX is fixed at 256 (it sizes hiscore_entry in libhiscore.a); do not define it"
#else
#define HISCORE_ENTRY_METADATA_MAX 256
#endif
/* Events buffered while a unary call waits, before the connection is failed. */
#define HISCORE_MAX_QUEUED_EVENTS 4096
/* Subscriptions open at once on one connection: the server's default max_subscriptions (1000;
 * hello.max_subscriptions says what a server allows). hiscore_subscribe refuses one more,
 * unsent, with HISCORE_RESOURCE_EXHAUSTED; a slot frees when hiscore_poll_event returns that
 * stream's END event. A slot is 8 bytes of hiscore_client (8,000 in all), so they are a fixed
 * array; it sizes hiscore_client: build applications with the header libhiscore.a was built with. */
#ifdef HISCORE_MAX_SUBSCRIPTIONS
#error "HISCORE_MAX_SUBSCRIPTIONS is fixed at 1000 (it sizes hiscore_client in libhiscore.a); do not define it"
#else
#define HISCORE_MAX_SUBSCRIPTIONS 1000
#endif

/* The 8-byte preface: ASCII "HISCORE" + protocol version 1. */
extern const uint8_t HISCORE_PREFACE[HISCORE_PREFACE_SIZE];

typedef struct hiscore_hello {
    uint32_t protocol_version;
    char server_version[64];
    uint32_t max_frame_bytes;
    uint32_t max_inflight_calls;
    uint32_t max_batch_submits;
    uint32_t max_page_entries;
    uint32_t max_players_per_query;
    uint32_t max_subscriptions;
    uint32_t max_metadata_bytes;
} hiscore_hello;

typedef struct hiscore_entry {
    char player_id[HISCORE_MAX_ID_BYTES + 1];
    int64_t score;
    int64_t subscore;
    uint64_t rank;          /* 1-based; 0 = not ranked */
    int64_t reached_at_us;  /* microseconds since the Unix epoch */
    size_t metadata_len;    /* full length on the server */
    uint8_t metadata[HISCORE_ENTRY_METADATA_MAX]; /* first min(metadata_len, MAX) bytes */
} hiscore_entry;

typedef struct hiscore_submit_result {
    hiscore_entry entry;    /* after the write, with its ordinal rank (0 if unranked) */
    uint64_t previous_rank; /* 0 = the player was new (always 0 if unranked) */
    int changed;
    int created;
} hiscore_submit_result;

typedef struct hiscore_top_query {
    const char *board_id;
    uint32_t limit;           /* 0 = 10; at most hello.max_page_entries, and on boards allowing
                                 large metadata at most (max_frame_bytes - 256) / (192 +
                                 max_metadata_bytes): RESOURCE_EXHAUSTED otherwise */
    int has_offset;           /* use offset (else cursor if cursor_len > 0, else from the top) */
    uint64_t offset;
    const uint8_t *cursor;    /* a previous hiscore_page.next_cursor */
    size_t cursor_len;
    int rank_mode;            /* HISCORE_RANK_* */
} hiscore_top_query;

typedef struct hiscore_page {
    uint8_t next_cursor[HISCORE_CURSOR_MAX]; /* pass back as hiscore_top_query.cursor */
    size_t next_cursor_len;                  /* 0 when the page was not full */
    uint64_t board_size;
} hiscore_page;

typedef struct hiscore_board_config {
    const char *board_id;
    int score_order;        /* HISCORE_SORT_* */
    int subscore_order;
    int write_operator;     /* HISCORE_OP_* */
    int rank_mode;          /* HISCORE_RANK_* (DEFAULT = ordinal) */
    uint64_t max_entries;   /* 0 = no limit */
    uint32_t max_metadata_bytes; /* 0 = 256 */
} hiscore_board_config;

/* Season resets (ResetSchedule in hiscore.proto; all times UTC). */
enum {
    HISCORE_RESET_NONE = 0,   /* the board never resets by itself (hiscore_reset_board still works) */
    HISCORE_RESET_DAILY = 1,
    HISCORE_RESET_WEEKLY = 2,
    HISCORE_RESET_MONTHLY = 3
};

/* What hiscore_create_board_with leaves out of hiscore_board_config. Zero = the defaults. */
typedef struct hiscore_board_options {
    int client_writes;      /* player tokens may submit their own scores (docs/security.md) */
    int reset_period;       /* HISCORE_RESET_*; NONE = no schedule */
    uint32_t minute_of_day; /* 0..1439 */
    uint32_t weekday;       /* WEEKLY: 1 = Monday .. 7 = Sunday */
    uint32_t day_of_month;  /* MONTHLY: 1..28 */
    uint32_t keep_periods;  /* archived periods kept; 0 = 10, at most 100 */
} hiscore_board_options;

/* An archived season of a board (hiscore_describe_board). */
typedef struct hiscore_period {
    uint64_t period_id;     /* pass as period_id to the *_in_period queries */
    int64_t started_at_us, ended_at_us;
    uint64_t size;
} hiscore_period;

typedef struct hiscore_board_info {
    uint64_t size;          /* players on the live board */
    uint64_t version;       /* accepted writes that changed it (restarts from 0 with the server) */
    uint64_t current_period_id;
    int64_t current_period_started_at_us;
    int client_writes;
    int reset_period;       /* HISCORE_RESET_* of its schedule */
    size_t n_periods;       /* archived periods the board has (periods[] holds min(n, cap)) */
} hiscore_board_info;

/* A board or player id, NUL-terminated (ids are 1..HISCORE_MAX_ID_BYTES bytes). */
typedef struct hiscore_id {
    char id[HISCORE_MAX_ID_BYTES + 1];
} hiscore_id;

/* Everything the server says about a board (hiscore_describe_board_details, hiscore_list_boards):
 * its config as the server stored it, plus what hiscore_board_info holds. */
typedef struct hiscore_board_details {
    char board_id[HISCORE_MAX_ID_BYTES + 1];
    int score_order;        /* HISCORE_SORT_* */
    int subscore_order;     /* HISCORE_SORT_* */
    int write_operator;     /* HISCORE_OP_* */
    int rank_mode;          /* HISCORE_RANK_* (as stored; DEFAULT = ordinal) */
    uint64_t max_entries;   /* 0 = no per-board limit */
    uint32_t max_metadata_bytes; /* as stored; 0 = the server default (256) */
    hiscore_board_options options; /* client_writes and the reset schedule (reset_period
                               HISCORE_RESET_NONE and the other fields 0 when it has none) */
    hiscore_board_info info; /* size, version, ...; from hiscore_list_boards the live period
                               (current_period_*) and n_periods are 0: the server lists no
                               periods (describe the board for them) */
} hiscore_board_details;

/* One item of hiscore_submit_batch: the arguments of hiscore_submit / hiscore_submit_unranked. */
typedef struct hiscore_batch_item {
    const char *board_id;   /* items may name different boards */
    const char *player_id;
    int64_t score;
    int64_t subscore;
    const uint8_t *metadata; /* NULL = keep the stored metadata; over the board's
                               max_metadata_bytes refuses the item (INVALID_ARGUMENT) */
    size_t metadata_len;
    int skip_ranks;         /* as hiscore_submit_unranked: no ranks in this item's result */
} hiscore_batch_item;

/* The answer to one hiscore_batch_item. */
typedef struct hiscore_batch_result {
    int status;             /* HISCORE_OK: applied, result is set; else the server's code for
                               this item (e.g. HISCORE_INVALID_ARGUMENT), result all zero */
    char message[HISCORE_ERROR_SIZE]; /* the server's reason when refused ("" when applied);
                               truncated to HISCORE_ERROR_SIZE - 1 bytes */
    hiscore_submit_result result; /* as hiscore_submit's (ranks 0 with skip_ranks) */
} hiscore_batch_result;

/* Roles of hiscore_authenticate (hiscore.v1.Role). */
enum {
    HISCORE_ROLE_UNSPECIFIED = 0,
    HISCORE_ROLE_READER = 1,
    HISCORE_ROLE_WRITER = 2,
    HISCORE_ROLE_ADMIN = 3,  /* also what a server without keys (open, loopback only) answers */
    HISCORE_ROLE_PLAYER = 4  /* a player token */
};

typedef struct hiscore_auth_info {
    int role;               /* HISCORE_ROLE_* */
    char player_id[HISCORE_MAX_ID_BYTES + 1]; /* player tokens: the player; else "" */
    int64_t expires_at;     /* player tokens: expiry, seconds since the Unix epoch; 0 = none */
    size_t n_boards;        /* player tokens: boards it may read ("*" = any); boards[] holds
                               min(n_boards, cap) of them */
} hiscore_auth_info;

/* Subscription targets. */
enum { HISCORE_SUB_PLAYER = 1, HISCORE_SUB_TOP = 2, HISCORE_SUB_AROUND = 3, HISCORE_SUB_FEED = 4 };

typedef struct hiscore_subscribe_query {
    const char *board_id;
    int target;             /* HISCORE_SUB_* */
    const char *player_id;  /* PLAYER, AROUND */
    uint32_t top;           /* TOP: N */
    uint32_t before, after; /* AROUND */
    uint32_t min_interval_ms;
    int rank_mode;
} hiscore_subscribe_query;

/* What a hiscore_event carries. */
enum {
    HISCORE_EVENT_END = 0,    /* the stream ended: see final_status / final_message */
    HISCORE_EVENT_PLAYER = 1, /* entry, previous_rank, present */
    HISCORE_EVENT_WINDOW = 2, /* items: snapshot entries (kind 0) or changes; window_size */
    HISCORE_EVENT_FEED = 3,   /* items: feed items */
    HISCORE_EVENT_EMPTY = 4   /* an event with no change */
};
enum { HISCORE_WINDOW_ENTERED = 1, HISCORE_WINDOW_LEFT = 2, HISCORE_WINDOW_MOVED = 3 };

typedef struct hiscore_event_item {
    int kind;               /* WINDOW: 0 = snapshot entry or HISCORE_WINDOW_*; FEED: 0 */
    hiscore_entry entry;
    uint32_t position, previous_position; /* WINDOW changes */
    uint64_t previous_rank; /* FEED */
    int created, removed;   /* FEED */
    uint64_t board_version; /* FEED */
} hiscore_event_item;

typedef struct hiscore_event {
    uint64_t subscription_id;
    int type;               /* HISCORE_EVENT_* */
    int final_status;       /* END: the stream's final status (HISCORE_OK, HISCORE_CANCELLED, ...) */
    char final_message[HISCORE_ERROR_SIZE];
    uint64_t board_version;
    int snapshot;
    /* PLAYER */
    hiscore_entry entry;
    uint64_t previous_rank;
    int present;
    /* WINDOW / FEED: set items and items_cap before polling. */
    uint32_t window_size;
    hiscore_event_item *items;
    size_t items_cap;
    size_t n_items;         /* items filled */
    size_t total_items;     /* items in the event (> n_items when items_cap was too small) */
} hiscore_event;

struct hiscore_queued_frame;

typedef struct hiscore_client {
    int fd;                 /* -1 when closed */
    int timeout_ms;         /* local timeout of each call; 0 = wait forever */
    uint64_t deadline_ms;   /* sent as Request.deadline_ms; 0 = none */
    char auth_token[HISCORE_MAX_TOKEN_BYTES + 1]; /* sent as Request.auth_token; empty = none.
                               Set it with hiscore_set_auth_token (a player token naming a
                               few boards is longer than 255 bytes: this holds the server's
                               limit, 4096) */
    hiscore_hello hello;
    int last_status;
    char error[HISCORE_ERROR_SIZE];
    /* internal */
    uint64_t next_call_id;
    uint8_t *rbuf;
    size_t rlen, rcap;
    uint64_t subs[HISCORE_MAX_SUBSCRIPTIONS];
    size_t n_subs;
    struct hiscore_queued_frame *queue_head, *queue_tail;
    size_t queue_len;
    void *tls;              /* the OpenSSL connection (SSL *) with TLS, else NULL */
} hiscore_client;

/* TLS options for hiscore_connect_tls. Files are PEM; NULL fields take the default. */
typedef struct hiscore_tls_options {
    const char *ca_file;     /* CA certificates to trust; NULL = the system's trust store */
    const char *cert_file;   /* client certificate chain, for servers started with
                                --tls-client-ca; NULL = none */
    const char *key_file;    /* its unencrypted private key; NULL = read from cert_file */
    const char *server_name; /* sent in SNI and matched against the server's certificate;
                                NULL = host (an IP address host is matched as an IP address) */
} hiscore_tls_options;

/* Connect, send the preface and wait for the hello (all within timeout_ms; also used as the
 * local timeout of later calls, 0 = none). Initialises every field of *c (auth token and
 * deadline_ms included: set them after connecting); call hiscore_close even on failure.
 * *c must not hold a connection: to reconnect on the same struct, hiscore_close it first, or its
 * socket, buffers and queued events leak (an uninitialised struct cannot be told apart from an
 * open one, so this is not detected). */
int hiscore_connect(hiscore_client *c, const char *host, uint16_t port, int timeout_ms);
/* hiscore_connect over TLS 1.2 or later (OpenSSL: link with -lssl -lcrypto too). The server's
 * certificate and name are always verified; tls NULL = all defaults. TLS failures return
 * HISCORE_ERR_TLS with the reason in c->error. */
int hiscore_connect_tls(hiscore_client *c, const char *host, uint16_t port, int timeout_ms,
                        const hiscore_tls_options *tls);
/* Close the connection and free internal buffers and queued events. Safe to call twice; *c is
 * then ready for hiscore_connect again. Returns HISCORE_OK. */
int hiscore_close(hiscore_client *c);
/* The API key or player token sent with every later call (NULL or "" = none); at most
 * HISCORE_MAX_TOKEN_BYTES (HISCORE_ERR_ARG beyond). Set it after hiscore_connect. */
int hiscore_set_auth_token(hiscore_client *c, const char *token);

/* Echo: payload (<= 1024 bytes) comes back into out (cap bytes), *out_len set. */
int hiscore_ping(hiscore_client *c, const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                 size_t *out_len);
/* Submit a score. metadata NULL = keep the stored metadata. out may be NULL. */
int hiscore_submit(hiscore_client *c, const char *board_id, const char *player_id, int64_t score,
                   int64_t subscore, const uint8_t *metadata, size_t metadata_len,
                   hiscore_submit_result *out);
/* hiscore_submit without ranks in the answer (SubmitRequest.skip_ranks): out->entry.rank and
 * out->previous_rank are 0 (out->created and out->changed as usual). Cheaper on a board split
 * over shards: only the player's shard does the work. hiscore_rank gives the rank later. */
int hiscore_submit_unranked(hiscore_client *c, const char *board_id, const char *player_id,
                            int64_t score, int64_t subscore, const uint8_t *metadata,
                            size_t metadata_len, hiscore_submit_result *out);
/* A player's entry and rank. out / board_size may be NULL. */
int hiscore_rank(hiscore_client *c, const char *board_id, const char *player_id, int rank_mode,
                 hiscore_entry *out, uint64_t *board_size);
/* A page of the board, best first, into entries[0..cap); *count = entries returned.
 * The effective limit (0 -> 10) must be <= cap. page may be NULL. */
int hiscore_top(hiscore_client *c, const hiscore_top_query *q, hiscore_entry *entries, size_t cap,
                size_t *count, hiscore_page *page);
/* before better entries, the player, after worse ones; before + after + 1 <= cap. */
int hiscore_around(hiscore_client *c, const char *board_id, const char *player_id, uint32_t before,
                   uint32_t after, int rank_mode, hiscore_entry *entries, size_t cap,
                   size_t *count, uint64_t *board_size);
/* Players with min <= score <= max; NULL bound = unbounded. */
int hiscore_count(hiscore_client *c, const char *board_id, const int64_t *min_score,
                  const int64_t *max_score, uint64_t *count, uint64_t *board_size);
/* Create a board (same config again = OK; other config = HISCORE_ALREADY_EXISTS). */
int hiscore_create_board(hiscore_client *c, const hiscore_board_config *cfg);
/* hiscore_create_board with client writes and a season schedule; opts NULL = none. */
int hiscore_create_board_with(hiscore_client *c, const hiscore_board_config *cfg,
                              const hiscore_board_options *opts);
/* A board's size, version, live period and archived periods, oldest first, into
 * periods[0..cap) (periods may be NULL when cap is 0); info->n_periods = all of them. Its config
 * (orders, operator, rank mode, limits): hiscore_describe_board_details. */
int hiscore_describe_board(hiscore_client *c, const char *board_id, hiscore_board_info *info,
                           hiscore_period *periods, size_t cap);
/* End the board's season now: its standings become the read-only period *archived_period_id
 * (queried with the *_in_period calls) and the live board starts empty. Admin only. Either out
 * pointer may be NULL. Cannot be cancelled once sent: after HISCORE_ERR_TIMEOUT it may still
 * complete on the server (hiscore_describe_board shows whether it did). */
int hiscore_reset_board(hiscore_client *c, const char *board_id, uint64_t *archived_period_id,
                        uint64_t *archived_entries);

/* The queries above on an archived period of the board (period_id from hiscore_reset_board or
 * hiscore_describe_board; 0 = the live board). An unknown period is HISCORE_NOT_FOUND. */
int hiscore_rank_in_period(hiscore_client *c, const char *board_id, const char *player_id,
                           int rank_mode, uint64_t period_id, hiscore_entry *out,
                           uint64_t *board_size);
int hiscore_top_in_period(hiscore_client *c, const hiscore_top_query *q, uint64_t period_id,
                          hiscore_entry *entries, size_t cap, size_t *count, hiscore_page *page);
int hiscore_around_in_period(hiscore_client *c, const char *board_id, const char *player_id,
                             uint32_t before, uint32_t after, int rank_mode, uint64_t period_id,
                             hiscore_entry *entries, size_t cap, size_t *count,
                             uint64_t *board_size);
int hiscore_count_in_period(hiscore_client *c, const char *board_id, const int64_t *min_score,
                            const int64_t *max_score, uint64_t period_id, uint64_t *count,
                            uint64_t *board_size);
/* Entries of the given players (e.g. a friends list, at most hello.max_players_per_query ids;
 * duplicates ignored), best first, each with its global rank, into entries[0..cap) with
 * cap >= n_players; players not on the board are left out (*count < n_players; which ones:
 * hiscore_entries_with_missing). period_id 0 = the live board. */
int hiscore_entries(hiscore_client *c, const char *board_id, const char *const *player_ids,
                    size_t n_players, int rank_mode, uint64_t period_id, hiscore_entry *entries,
                    size_t cap, size_t *count, uint64_t *board_size);
/* hiscore_entries, plus the requested players that are not on the board (sorted, each once)
 * into missing[0..missing_cap) (missing may be NULL when missing_cap is 0); *n_missing (may be
 * NULL) = all of them, at most the number of distinct ids asked for, so missing_cap >= n_players
 * always holds them all. */
int hiscore_entries_with_missing(hiscore_client *c, const char *board_id,
                                 const char *const *player_ids, size_t n_players, int rank_mode,
                                 uint64_t period_id, hiscore_entry *entries, size_t cap,
                                 size_t *count, uint64_t *board_size, hiscore_id *missing,
                                 size_t missing_cap, size_t *n_missing);
/* hiscore_describe_board with the board's config too (sort orders, write operator, rank mode,
 * limits, client_writes, reset schedule): *out, and the archived periods into periods[0..cap)
 * as hiscore_describe_board (out->info.n_periods = all of them). */
int hiscore_describe_board_details(hiscore_client *c, const char *board_id,
                                   hiscore_board_details *out, hiscore_period *periods,
                                   size_t cap);
/* Boards sorted by id, starting after after_board_id (NULL or "" = from the first), into
 * boards[0..cap); *count = boards returned; *more = 1 when more boards follow the last one
 * (pass its board_id as after_board_id for the next page). limit: 0 = min(100,
 * hello.max_page_entries); at most hello.max_page_entries (HISCORE_OUT_OF_RANGE beyond); the
 * effective limit must be <= cap (HISCORE_ERR_ARG). count and more may be NULL. Reader role;
 * player tokens may not list boards. */
int hiscore_list_boards(hiscore_client *c, const char *after_board_id, uint32_t limit,
                        hiscore_board_details *boards, size_t cap, size_t *count, int *more);
/* Many submits in one call (a game server posting a match's results): items[0..n) into
 * results[0..n), in order. n is at most hello.max_batch_submits (1000 by default; more is
 * HISCORE_RESOURCE_EXHAUSTED, not sent), and the server refuses a whole batch whose answers could
 * exceed max_frame_bytes (about 249 items on boards allowing 4 KiB of metadata; the message says
 * how many fit). Returns HISCORE_OK when the server answered every item: each results[i].status
 * then says whether item i was applied (a refused item does not stop the others); *n_refused
 * (may be NULL) = items refused. Items for the same player apply in order; for different
 * players in any order. Any other return: results[] is not filled (after HISCORE_ERR_TIMEOUT
 * some items may have been applied). Writer role. */
int hiscore_submit_batch(hiscore_client *c, const hiscore_batch_item *items, size_t n,
                         hiscore_batch_result *results, size_t *n_refused);
/* Remove a player from one board (the live one; archived periods are read-only). *removed (may
 * be NULL) = the removed entry with the rank it had. HISCORE_NOT_FOUND when the player or the
 * board is not there. Writer role. */
int hiscore_remove_player(hiscore_client *c, const char *board_id, const char *player_id,
                          hiscore_entry *removed);
/* Authenticate the connection with an API key or a player token (at most
 * HISCORE_MAX_TOKEN_BYTES; HISCORE_ERR_ARG beyond): later calls run with its identity, unless
 * c->auth_token (hiscore_set_auth_token: per call) names another. HISCORE_UNAUTHENTICATED for an
 * unknown key or an invalid or expired token (the connection stays unauthenticated; after 5
 * failures in a row the server closes it). *out (may be NULL) = the role, and for player tokens
 * the player, expiry and boards (into boards[0..cap); boards may be NULL when cap is 0). */
int hiscore_authenticate(hiscore_client *c, const char *token, hiscore_auth_info *out,
                         hiscore_id *boards, size_t cap);
/* Back up the server's data directory into destination, a new or empty directory on the
 * server's machine (its path as the server sees it). Admin only. Out pointers may be NULL:
 * *files = files in the backup, *linked_files = how many of them were hard-linked rather than
 * copied, *copied_bytes = bytes copied. HISCORE_FAILED_PRECONDITION in memory mode
 * (--durability memory), for a destination that is not empty, or while another backup runs.
 * Cannot be cancelled once sent: after HISCORE_ERR_TIMEOUT it may still complete on the server
 * (set a c->timeout_ms that fits the data directory's size). */
int hiscore_backup(hiscore_client *c, const char *destination, uint64_t *files,
                   uint64_t *linked_files, uint64_t *copied_bytes);
/* Delete a board; removed_entries may be NULL. */
int hiscore_delete_board(hiscore_client *c, const char *board_id, uint64_t *removed_entries);
/* Remove a player from every board and every archived period (season) of every board, e.g. for
 * a data-deletion request. Admin only (HISCORE_PERMISSION_DENIED for other keys and for player
 * tokens); HISCORE_INVALID_ARGUMENT for an invalid player id. *removed_entries (may be NULL) =
 * entries removed, one per board or archived period that held the player (0: none did).
 * Idempotent: after a failure (e.g. HISCORE_ERR_TIMEOUT, when some boards may already have been
 * erased) call it again. */
int hiscore_erase_player(hiscore_client *c, const char *player_id, uint64_t *removed_entries);
/* Cancel call call_id on this connection; *cancelled = 1 when it was still running (0 for a
 * running backup or reset_board, which cannot be stopped and is answered with its result). */
int hiscore_cancel(hiscore_client *c, uint64_t call_id, int *cancelled);

/* Start a subscription. Waits for its first frame: returns HISCORE_OK when the stream is live
 * (the snapshot event is queued for hiscore_poll_event), or the final status when the server
 * refused it (e.g. HISCORE_UNIMPLEMENTED, HISCORE_NOT_FOUND). A server code with c->fd == -1
 * is a connection-level error instead (see the top of this file): the connection is gone. */
int hiscore_subscribe(hiscore_client *c, const hiscore_subscribe_query *q, uint64_t *subscription_id);
/* Wait up to timeout_ms (0 = just check, -1 = forever) for the next event of any subscription.
 * HISCORE_OK: *ev filled (type HISCORE_EVENT_END = that stream is over); HISCORE_ERR_NO_EVENT:
 * nothing arrived; other values: the connection failed (a server code, e.g.
 * HISCORE_UNAUTHENTICATED, when it sent a connection-level error first: see the top of this
 * file). Events queued before the failure are still returned first. */
int hiscore_poll_event(hiscore_client *c, int timeout_ms, hiscore_event *ev);
/* Ask the server to end a subscription; its END event (final status CANCELLED) follows. */
int hiscore_unsubscribe(hiscore_client *c, uint64_t subscription_id);

/* Framing helpers (also used by the conformance tests). */
void hiscore_frame_header_encode(uint8_t out[HISCORE_FRAME_HEADER_SIZE], uint32_t body_len);
/* HISCORE_OK and *body_len, or HISCORE_ERR_PROTOCOL (non-zero flag or body_len > max). */
int hiscore_frame_header_decode(const uint8_t in[HISCORE_FRAME_HEADER_SIZE], uint32_t max,
                                uint32_t *body_len);
/* The name of a status ("NOT_FOUND", "ERR_TIMEOUT", ...). */
const char *hiscore_status_name(int status);

/* Raw access to any unary method (each also has a wrapper above): send *req (its call_id is
 * assigned here) and wait for its answer. On HISCORE_OK *resp_out is the decoded response (a
 * non-OK status is returned as the code, with *resp_out still set); free it with
 * hiscore_free_response. Unary methods only: a subscribe is refused (HISCORE_ERR_ARG, nothing
 * sent); use hiscore_subscribe. */
struct Hiscore__V1__Request;
struct Hiscore__V1__Response;
int hiscore_call(hiscore_client *c, struct Hiscore__V1__Request *req,
                 struct Hiscore__V1__Response **resp_out);
void hiscore_free_response(struct Hiscore__V1__Response *resp);

#ifdef __cplusplus
}
#endif
#endif /* HISCORE_H */
