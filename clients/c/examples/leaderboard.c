/* leaderboard: submit a match's scores in one batch, print the top 10, a rank, and watch the top
 * for a while.
 *   build/leaderboard [host] [port]        (default 127.0.0.1 7450) */
#include <stdio.h>
#include <stdlib.h>

#include "hiscore.h"

static int check(hiscore_client *c, int st, const char *what) {
    if (st != HISCORE_OK) fprintf(stderr, "%s failed: %s (%s)\n", what, hiscore_status_name(st), c->error);
    return st;
}

int main(int argc, char **argv) {
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    uint16_t port = (uint16_t)(argc > 2 ? atoi(argv[2]) : HISCORE_DEFAULT_PORT);
    static const char *const players[] = {"alice", "bob", "carol", "dave"};
    static const int64_t scores[] = {1200, 950, 1730, 1200};
    hiscore_client c;
    hiscore_batch_item match[4] = {{0}};
    hiscore_batch_result results[4];
    hiscore_entry top[10], me;
    hiscore_top_query q = {0};
    hiscore_subscribe_query sq = {0};
    size_t n = 0, i;
    uint64_t size = 0, sub = 0;
    int st;

    st = hiscore_connect(&c, host, port, 5000);
    if (check(&c, st, "connect") != HISCORE_OK) {
        hiscore_close(&c);
        return 1;
    }
    printf("connected to hiscored %s (protocol %u)\n", c.hello.server_version,
           (unsigned)c.hello.protocol_version);
    /* a game server posts a match's results in one call (hiscore_submit for a single score);
     * items for different players apply in any order: each rank is as of that item's write */
    for (i = 0; i < 4; i++) {
        match[i].board_id = "example-weekly";
        match[i].player_id = players[i];
        match[i].score = scores[i];
    }
    st = hiscore_submit_batch(&c, match, 4, results, NULL);
    if (check(&c, st, "submit_batch") != HISCORE_OK) goto fail;
    for (i = 0; i < 4; i++) {
        if (results[i].status != HISCORE_OK) { /* refused items do not stop the others */
            printf("refused %-5s: %s (%s)\n", players[i], hiscore_status_name(results[i].status),
                   results[i].message);
            continue;
        }
        printf("submitted %-5s %5lld -> rank %llu%s\n", players[i], (long long)scores[i],
               (unsigned long long)results[i].result.entry.rank,
               results[i].result.created ? " (new)" : "");
    }
    q.board_id = "example-weekly";
    q.limit = 10;
    st = hiscore_top(&c, &q, top, 10, &n, NULL);
    if (check(&c, st, "top") != HISCORE_OK) goto fail;
    for (i = 0; i < n; i++)
        printf("%2llu. %-8s %lld\n", (unsigned long long)top[i].rank, top[i].player_id,
               (long long)top[i].score);
    st = hiscore_rank(&c, "example-weekly", "dave", HISCORE_RANK_COMPETITION, &me, &size);
    if (check(&c, st, "rank") != HISCORE_OK) goto fail;
    printf("dave: competition rank %llu of %llu\n", (unsigned long long)me.rank, (unsigned long long)size);

    sq.board_id = "example-weekly";
    sq.target = HISCORE_SUB_TOP;
    sq.top = 3;
    st = hiscore_subscribe(&c, &sq, &sub);
    if (st == HISCORE_UNIMPLEMENTED) {
        printf("subscriptions not supported by this server\n");
    } else if (check(&c, st, "subscribe") == HISCORE_OK) {
        hiscore_event_item items[16];
        hiscore_event ev;
        ev.items = items;
        ev.items_cap = 16;
        while ((st = hiscore_poll_event(&c, 1000, &ev)) == HISCORE_OK && ev.type != HISCORE_EVENT_END)
            printf("event: board version %llu, %zu items\n", (unsigned long long)ev.board_version,
                   ev.n_items);
        if (st != HISCORE_ERR_NO_EVENT && check(&c, st, "poll") != HISCORE_OK) goto fail;
        (void)hiscore_unsubscribe(&c, sub);
    }
    hiscore_close(&c);
    return 0;
fail:
    hiscore_close(&c);
    return 1;
}
