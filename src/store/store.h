/* sandnet's state store: sandboxes, each one's current policy revision, the revision history (the
 * last SN_STORE_HISTORY per sandbox) and a change feed. SQLite under the state directory (WAL,
 * synchronous=FULL: a commit that returned survives a crash), schema migrations on open. Store
 * layer: the only place sqlite3.h appears. Shaped for a distributed store later (etcd): rows keyed
 * by sandbox, compare-and-swap on the revision, changes numbered in one sequence.
 *
 * Conventions: int functions return 0 or -errno (-ENOENT no such sandbox, -EEXIST id taken,
 * -ESTALE revision mismatch, -EIO the database failed; err then says why). One struct sn_store is
 * used by one thread at a time (the control thread). */
#ifndef SN_STORE_H
#define SN_STORE_H

#include <stddef.h>
#include <stdint.h>

#define SN_STORE_HISTORY 100
#define SN_ID_MAX 32

enum sn_sandbox_state { SN_STATE_RUNNING = 0, SN_STATE_PAUSED = 1 };

struct sn_sandbox_row {
	char id[SN_ID_MAX + 1];
	char team[65];
	enum sn_sandbox_state state;
	char addr4[16]; /* dotted quad */
	char addr6[46]; /* empty without IPv6 */
	char *labels;   /* JSON object text, owned by the row */
	int64_t created_at; /* Unix seconds */
	uint64_t revision;
	char *policy; /* canonical native JSON of the current revision, owned by the row */
	uint64_t serial; /* the sandboxes numbered in the order they were created, from 1; never
			  * reused (set by sn_store_create) */
};

struct sn_store;

int sn_store_open(const char *state_dir, struct sn_store **out, char *err, size_t errsize);
void sn_store_close(struct sn_store *st);
/* The schema version the database is at (migrations applied). */
int sn_store_schema_version(struct sn_store *st);

/* Frees the strings a row owns (not the row). */
void sn_sandbox_row_clear(struct sn_sandbox_row *row);

/* Creates a sandbox at revision row->revision with policy row->policy (history starts with it),
 * and sets row->serial. -EEXIST when the id or an address is taken (err names which). */
int sn_store_create(struct sn_store *st, struct sn_sandbox_row *row);
/* Fills *row (whose strings the caller then owns and clears). */
int sn_store_get(struct sn_store *st, const char *id, struct sn_sandbox_row *row);
/* Calls fn for each sandbox (of team, or of every team when team is NULL), ordered by id; a
 * non-zero return of fn stops the walk and is returned. The row is valid during the call only. */
int sn_store_list(struct sn_store *st, const char *team,
		  int (*fn)(const struct sn_sandbox_row *row, void *arg), void *arg);
int sn_store_delete(struct sn_store *st, const char *id);
int sn_store_set_state(struct sn_store *st, const char *id, enum sn_sandbox_state state);
/* Compare-and-swap: commits policy as revision expect + 1 when the current revision is expect
 * (else -ESTALE), records it in the history and prunes the history to SN_STORE_HISTORY. */
int sn_store_commit_policy(struct sn_store *st, const char *id, uint64_t expect,
			   const char *policy, int64_t now);
/* Calls fn for each stored revision of a sandbox, newest first. */
int sn_store_history(struct sn_store *st, const char *id,
		     int (*fn)(uint64_t revision, const char *policy, int64_t at, void *arg),
		     void *arg);
/* Calls fn for each change after seq (creates, policy commits, state changes, deletes), in order.
 * kind is "create", "policy", "state" or "delete". */
int sn_store_changes(struct sn_store *st, uint64_t after,
		     int (*fn)(uint64_t seq, const char *id, const char *kind, uint64_t revision,
			       void *arg),
		     void *arg);

/* The last error's text (for logs), valid until the next call. */
const char *sn_store_error(struct sn_store *st);

#endif
