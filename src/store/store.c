/* SQLite store; see store.h. Store layer. */
#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"

struct sn_store {
	sqlite3 *db;
	char err[256];
};

/* Migrations, applied in order inside one transaction each; PRAGMA user_version counts them. */
static const char *const migrations[] = {
	/* 1: sandboxes, revision history, change feed */
	"CREATE TABLE sandboxes ("
	"  id TEXT PRIMARY KEY,"
	"  team TEXT NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  addr4 TEXT NOT NULL UNIQUE,"
	"  addr6 TEXT UNIQUE,"
	"  labels TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  revision INTEGER NOT NULL"
	") STRICT;"
	"CREATE TABLE revisions ("
	"  sandbox TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,"
	"  revision INTEGER NOT NULL,"
	"  policy TEXT NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  PRIMARY KEY (sandbox, revision)"
	") STRICT, WITHOUT ROWID;"
	"CREATE TABLE changes ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  sandbox TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  revision INTEGER NOT NULL"
	") STRICT;",
	/* 2: a creation serial per sandbox, never reused (the sandbox's own user for exec); the
	 * sandboxes already there numbered in their row order */
	"ALTER TABLE sandboxes ADD COLUMN serial INTEGER NOT NULL DEFAULT 0;"
	"UPDATE sandboxes SET serial = rowid;"
	"CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;"
	"INSERT INTO counters VALUES ('serial', (SELECT coalesce(max(serial), 0) FROM sandboxes));",
};
#define NMIGRATIONS (int)(sizeof(migrations) / sizeof(migrations[0]))

static int fail(struct sn_store *st, const char *what)
{
	snprintf(st->err, sizeof(st->err), "%s: %s", what, sqlite3_errmsg(st->db));
	return -EIO;
}

const char *sn_store_error(struct sn_store *st)
{
	return st->err;
}

static int exec(struct sn_store *st, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(st->err, sizeof(st->err), "%s", msg ? msg : "sqlite error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static sqlite3_stmt *prepare(struct sn_store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		fail(st, "prepare");
		return NULL;
	}
	return s;
}

int sn_store_schema_version(struct sn_store *st)
{
	sqlite3_stmt *s = prepare(st, "PRAGMA user_version");
	int v = -1;
	if (s && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int migrate(struct sn_store *st)
{
	int v = sn_store_schema_version(st);
	if (v < 0)
		return -EIO;
	if (v > NMIGRATIONS) {
		snprintf(st->err, sizeof(st->err),
			 "the database is at schema %d, newer than this sandnetd (%d)", v,
			 NMIGRATIONS);
		return -EPROTO;
	}
	for (; v < NMIGRATIONS; v++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
		if (exec(st, "BEGIN IMMEDIATE") || exec(st, migrations[v]) || exec(st, pragma) ||
		    exec(st, "COMMIT")) {
			char keep[256];
			snprintf(keep, sizeof(keep), "migration %d: %s", v + 1, st->err);
			exec(st, "ROLLBACK");
			snprintf(st->err, sizeof(st->err), "%s", keep);
			return -EIO;
		}
	}
	return 0;
}

int sn_store_open(const char *state_dir, struct sn_store **out, char *err, size_t errsize)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/sandnet.db", state_dir);
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errsize, "%s: %s", state_dir, strerror(errno));
		return -errno;
	}
	struct sn_store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	int rc = sqlite3_open_v2(path, &st->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errsize, "%s: %s", path,
			 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		sqlite3_close(st->db);
		free(st);
		return -EIO;
	}
	sqlite3_busy_timeout(st->db, 5000);
	rc = exec(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		      "PRAGMA foreign_keys = ON;");
	if (!rc)
		rc = migrate(st);
	if (rc) {
		snprintf(err, errsize, "%s: %s", path, st->err);
		sn_store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void sn_store_close(struct sn_store *st)
{
	if (!st)
		return;
	sqlite3_close(st->db);
	free(st);
}

void sn_sandbox_row_clear(struct sn_sandbox_row *row)
{
	free(row->labels);
	free(row->policy);
	row->labels = row->policy = NULL;
}

static int change(struct sn_store *st, const char *id, const char *kind, uint64_t revision)
{
	sqlite3_stmt *s = prepare(st, "INSERT INTO changes (sandbox, kind, revision) VALUES (?,?,?)");
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)revision);
	int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : fail(st, "change");
	sqlite3_finalize(s);
	return rc;
}

/* Runs body inside BEGIN IMMEDIATE ... COMMIT, rolling back when it fails. */
#define TX(st, body)                                                                               \
	do {                                                                                       \
		if (exec(st, "BEGIN IMMEDIATE"))                                                   \
			return -EIO;                                                               \
		int tx_rc_ = (body);                                                               \
		if (tx_rc_ == 0 && exec(st, "COMMIT"))                                             \
			tx_rc_ = -EIO;                                                             \
		if (tx_rc_) {                                                                      \
			char keep_[256];                                                           \
			snprintf(keep_, sizeof(keep_), "%s", st->err);                             \
			exec(st, "ROLLBACK");                                                      \
			snprintf(st->err, sizeof(st->err), "%s", keep_);                           \
		}                                                                                  \
		return tx_rc_;                                                                     \
	} while (0)

static int insert_revision(struct sn_store *st, const char *id, uint64_t rev, const char *policy,
			   int64_t at)
{
	sqlite3_stmt *s =
		prepare(st, "INSERT INTO revisions (sandbox, revision, policy, at) VALUES (?,?,?,?)");
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)rev);
	sqlite3_bind_text(s, 3, policy, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, at);
	int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : fail(st, "insert revision");
	sqlite3_finalize(s);
	if (rc)
		return rc;
	/* keep the newest SN_STORE_HISTORY */
	s = prepare(st, "DELETE FROM revisions WHERE sandbox = ? AND revision <= ?");
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)rev - SN_STORE_HISTORY);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : fail(st, "prune history");
	sqlite3_finalize(s);
	return rc;
}

static int create_body(struct sn_store *st, struct sn_sandbox_row *row)
{
	sqlite3_stmt *s = prepare(st, "UPDATE counters SET value = value + 1 WHERE name = 'serial'"
				      " RETURNING value");
	if (!s)
		return -EIO;
	int step = sqlite3_step(s);
	row->serial = step == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	if (!row->serial)
		return fail(st, "serial");
	s = prepare(st, "INSERT INTO sandboxes (id, team, state, addr4, addr6, labels,"
			" created_at, revision, serial) VALUES (?,?,?,?,?,?,?,?,?)");
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, row->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, row->team, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, (int)row->state);
	sqlite3_bind_text(s, 4, row->addr4, -1, SQLITE_STATIC);
	if (row->addr6[0])
		sqlite3_bind_text(s, 5, row->addr6, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 5);
	sqlite3_bind_text(s, 6, row->labels ? row->labels : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, row->created_at);
	sqlite3_bind_int64(s, 8, (sqlite3_int64)row->revision);
	sqlite3_bind_int64(s, 9, (sqlite3_int64)row->serial);
	step = sqlite3_step(s);
	int rc = 0;
	if (step != SQLITE_DONE) {
		int ext = sqlite3_extended_errcode(st->db);
		bool taken = ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE;
		rc = fail(st, "create");
		if (taken)
			rc = -EEXIST;
	}
	sqlite3_finalize(s);
	if (rc)
		return rc;
	rc = insert_revision(st, row->id, row->revision, row->policy ? row->policy : "{}",
			     row->created_at);
	return rc ? rc : change(st, row->id, "create", row->revision);
}

int sn_store_create(struct sn_store *st, struct sn_sandbox_row *row)
{
	TX(st, create_body(st, row));
}

static void fill_row(sqlite3_stmt *s, struct sn_sandbox_row *row, bool copy)
{
	memset(row, 0, sizeof(*row));
	snprintf(row->id, sizeof(row->id), "%s", (const char *)sqlite3_column_text(s, 0));
	snprintf(row->team, sizeof(row->team), "%s", (const char *)sqlite3_column_text(s, 1));
	row->state = (enum sn_sandbox_state)sqlite3_column_int(s, 2);
	snprintf(row->addr4, sizeof(row->addr4), "%s", (const char *)sqlite3_column_text(s, 3));
	if (sqlite3_column_type(s, 4) != SQLITE_NULL)
		snprintf(row->addr6, sizeof(row->addr6), "%s",
			 (const char *)sqlite3_column_text(s, 4));
	const char *labels = (const char *)sqlite3_column_text(s, 5);
	const char *policy = (const char *)sqlite3_column_text(s, 8);
	row->labels = copy ? strdup(labels ? labels : "{}") : (char *)labels;
	row->created_at = sqlite3_column_int64(s, 6);
	row->revision = (uint64_t)sqlite3_column_int64(s, 7);
	row->policy = copy ? strdup(policy ? policy : "{}") : (char *)policy;
	row->serial = (uint64_t)sqlite3_column_int64(s, 9);
}

#define ROW_SELECT                                                                                 \
	"SELECT s.id, s.team, s.state, s.addr4, s.addr6, s.labels, s.created_at, s.revision,"     \
	" r.policy, s.serial FROM sandboxes s"                                                      \
	" JOIN revisions r ON r.sandbox = s.id AND r.revision = s.revision"

int sn_store_get(struct sn_store *st, const char *id, struct sn_sandbox_row *row)
{
	sqlite3_stmt *s = prepare(st, ROW_SELECT " WHERE s.id = ?");
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	int step = sqlite3_step(s), rc = 0;
	if (step == SQLITE_ROW) {
		fill_row(s, row, true);
		if (!row->labels || !row->policy) {
			sn_sandbox_row_clear(row);
			rc = -ENOMEM;
		}
	} else {
		rc = step == SQLITE_DONE ? -ENOENT : fail(st, "get");
	}
	sqlite3_finalize(s);
	return rc;
}

int sn_store_list(struct sn_store *st, const char *team,
		  int (*fn)(const struct sn_sandbox_row *row, void *arg), void *arg)
{
	sqlite3_stmt *s = prepare(st, team ? ROW_SELECT " WHERE s.team = ? ORDER BY s.id"
					   : ROW_SELECT " ORDER BY s.id");
	if (!s)
		return -EIO;
	if (team)
		sqlite3_bind_text(s, 1, team, -1, SQLITE_STATIC);
	int rc = 0, step;
	while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
		struct sn_sandbox_row row;
		fill_row(s, &row, false);
		rc = fn(&row, arg);
	}
	if (!rc && step != SQLITE_DONE)
		rc = fail(st, "list");
	sqlite3_finalize(s);
	return rc;
}

static int delete_body(struct sn_store *st, const char *id)
{
	sqlite3_stmt *s = prepare(st, "DELETE FROM sandboxes WHERE id = ?");
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : fail(st, "delete");
	sqlite3_finalize(s);
	if (rc)
		return rc;
	if (sqlite3_changes(st->db) == 0)
		return -ENOENT;
	return change(st, id, "delete", 0);
}

int sn_store_delete(struct sn_store *st, const char *id)
{
	TX(st, delete_body(st, id));
}

static int state_body(struct sn_store *st, const char *id, enum sn_sandbox_state state)
{
	sqlite3_stmt *s = prepare(st, "UPDATE sandboxes SET state = ? WHERE id = ? RETURNING revision");
	if (!s)
		return -EIO;
	sqlite3_bind_int(s, 1, (int)state);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	int step = sqlite3_step(s);
	uint64_t rev = step == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	int rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -ENOENT : fail(st, "state");
	sqlite3_finalize(s);
	return rc ? rc : change(st, id, "state", rev);
}

int sn_store_set_state(struct sn_store *st, const char *id, enum sn_sandbox_state state)
{
	TX(st, state_body(st, id, state));
}

static int commit_body(struct sn_store *st, const char *id, uint64_t expect, const char *policy,
		       int64_t now)
{
	sqlite3_stmt *s = prepare(st, "UPDATE sandboxes SET revision = revision + 1"
				      " WHERE id = ? AND revision = ?");
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)expect);
	int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : fail(st, "commit");
	sqlite3_finalize(s);
	if (rc)
		return rc;
	if (sqlite3_changes(st->db) == 0) {
		/* tell a missing sandbox from a stale revision */
		struct sn_sandbox_row row;
		rc = sn_store_get(st, id, &row);
		if (rc == 0) {
			sn_sandbox_row_clear(&row);
			snprintf(st->err, sizeof(st->err), "revision is %llu, not %llu",
				 (unsigned long long)row.revision, (unsigned long long)expect);
			return -ESTALE;
		}
		return rc;
	}
	rc = insert_revision(st, id, expect + 1, policy, now);
	return rc ? rc : change(st, id, "policy", expect + 1);
}

int sn_store_commit_policy(struct sn_store *st, const char *id, uint64_t expect,
			   const char *policy, int64_t now)
{
	TX(st, commit_body(st, id, expect, policy, now));
}

int sn_store_history(struct sn_store *st, const char *id,
		     int (*fn)(uint64_t revision, const char *policy, int64_t at, void *arg),
		     void *arg)
{
	sqlite3_stmt *s = prepare(st, "SELECT revision, policy, at FROM revisions WHERE sandbox = ?"
				      " ORDER BY revision DESC");
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	int rc = 0, step;
	while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW)
		rc = fn((uint64_t)sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
			sqlite3_column_int64(s, 2), arg);
	if (!rc && step != SQLITE_DONE)
		rc = fail(st, "history");
	sqlite3_finalize(s);
	return rc;
}

int sn_store_changes(struct sn_store *st, uint64_t after,
		     int (*fn)(uint64_t seq, const char *id, const char *kind, uint64_t revision,
			       void *arg),
		     void *arg)
{
	sqlite3_stmt *s = prepare(st, "SELECT seq, sandbox, kind, revision FROM changes WHERE seq > ?"
				      " ORDER BY seq");
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)after);
	int rc = 0, step;
	while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW)
		rc = fn((uint64_t)sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
			(const char *)sqlite3_column_text(s, 2),
			(uint64_t)sqlite3_column_int64(s, 3), arg);
	if (!rc && step != SQLITE_DONE)
		rc = fail(st, "changes");
	sqlite3_finalize(s);
	return rc;
}
