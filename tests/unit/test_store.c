/* Unit tests of the SQLite store: migrations, create/get/list/delete, compare-and-swap commits,
 * history pruning, the change feed, persistence across reopen. Mirrors src/store/store.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sn-store-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct sn_store *open_store(void)
{
	struct sn_store *st;
	char err[256];
	if (sn_store_open(dir, &st, err, sizeof(err)))
		fail_msg("open: %s", err);
	return st;
}

static struct sn_sandbox_row row(const char *id, const char *team, const char *addr4)
{
	struct sn_sandbox_row r = {.created_at = 1700000000, .revision = 1};
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.team, sizeof(r.team), "%s", team);
	snprintf(r.addr4, sizeof(r.addr4), "%s", addr4);
	r.labels = "{\"job\":\"ci\"}";
	r.policy = "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[]}}";
	return r;
}

/* The serial the store keeps for id. */
static uint64_t stored_serial(struct sn_store *st, const char *id)
{
	struct sn_sandbox_row got;
	assert_int_equal(sn_store_get(st, id, &got), 0);
	uint64_t serial = got.serial;
	sn_sandbox_row_clear(&got);
	return serial;
}

/* The serial a new sandbox is given. */
static uint64_t create_serial(struct sn_store *st, const char *id, const char *addr4)
{
	struct sn_sandbox_row r = row(id, "t", addr4);
	assert_int_equal(sn_store_create(st, &r), 0);
	return r.serial;
}

static int count_fn(const struct sn_sandbox_row *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static int hist_fn(uint64_t rev, const char *policy, int64_t at, void *arg)
{
	(void)policy;
	(void)at;
	uint64_t *v = arg;
	if (!v[0])
		v[1] = rev; /* newest */
	v[2] = rev;         /* oldest so far */
	v[0]++;
	return 0;
}

static int change_fn(uint64_t seq, const char *id, const char *kind, uint64_t rev, void *arg)
{
	(void)seq;
	(void)rev;
	char *log = arg;
	size_t used = strlen(log);
	snprintf(log + used, 4096 - used, "%s:%s ", kind, id);
	return 0;
}

static void test_store(void **state)
{
	(void)state;
	struct sn_store *st = open_store();
	assert_int_equal(sn_store_schema_version(st), 2);

	struct sn_sandbox_row a = row("aaa", "default", "10.200.0.2"), b = row("bbb", "other", "10.200.0.6");
	snprintf(b.addr6, sizeof(b.addr6), "fd00::6");
	assert_int_equal(sn_store_create(st, &a), 0);
	assert_int_equal(sn_store_create(st, &b), 0);
	assert_int_equal(a.serial, 1);
	assert_int_equal(b.serial, 2);
	int dup = sn_store_create(st, &a);
	if (dup != -EEXIST)
		fail_msg("duplicate create: %d %s", dup, sn_store_error(st));

	struct sn_sandbox_row got;
	assert_int_equal(sn_store_get(st, "bbb", &got), 0);
	assert_string_equal(got.team, "other");
	assert_string_equal(got.addr6, "fd00::6");
	assert_string_equal(got.labels, "{\"job\":\"ci\"}");
	assert_int_equal(got.revision, 1);
	assert_int_equal(got.state, SN_STATE_RUNNING);
	assert_int_equal(got.serial, 2);
	sn_sandbox_row_clear(&got);
	assert_int_equal(sn_store_get(st, "nope", &got), -ENOENT);

	int n = 0;
	assert_int_equal(sn_store_list(st, NULL, count_fn, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(sn_store_list(st, "other", count_fn, &n), 0);
	assert_int_equal(n, 1);

	/* compare-and-swap */
	assert_int_equal(sn_store_commit_policy(st, "aaa", 1, "{\"v\":2}", 1700000001), 0);
	assert_int_equal(sn_store_commit_policy(st, "aaa", 1, "{\"v\":2}", 1700000001), -ESTALE);
	assert_int_equal(sn_store_commit_policy(st, "zzz", 1, "{}", 1700000001), -ENOENT);
	assert_int_equal(sn_store_get(st, "aaa", &got), 0);
	assert_int_equal(got.revision, 2);
	assert_string_equal(got.policy, "{\"v\":2}");
	sn_sandbox_row_clear(&got);

	/* the history keeps the newest 100 */
	for (uint64_t r = 2; r < 160; r++)
		assert_int_equal(sn_store_commit_policy(st, "aaa", r, "{}", 1700000002), 0);
	uint64_t h[3] = {0};
	assert_int_equal(sn_store_history(st, "aaa", hist_fn, h), 0);
	assert_int_equal(h[0], SN_STORE_HISTORY);
	assert_int_equal(h[1], 160);
	assert_int_equal(h[2], 61);

	assert_int_equal(sn_store_set_state(st, "bbb", SN_STATE_PAUSED), 0);
	assert_int_equal(sn_store_set_state(st, "nope", SN_STATE_PAUSED), -ENOENT);
	assert_int_equal(sn_store_delete(st, "bbb"), 0);
	assert_int_equal(sn_store_delete(st, "bbb"), -ENOENT);
	h[0] = 0;
	assert_int_equal(sn_store_history(st, "bbb", hist_fn, h), 0);
	assert_int_equal(h[0], 0); /* the history went with the sandbox */

	char log[4096] = "";
	assert_int_equal(sn_store_changes(st, 0, change_fn, log), 0);
	assert_non_null(strstr(log, "create:aaa create:bbb policy:aaa "));
	assert_non_null(strstr(log, "state:bbb delete:bbb "));
	sn_store_close(st);

	/* everything survives a reopen; a serial is never given again, not even to the id and
	 * address of a deleted sandbox (the duplicate create above took none) */
	st = open_store();
	assert_int_equal(sn_store_get(st, "aaa", &got), 0);
	assert_int_equal(got.revision, 160);
	assert_int_equal(got.serial, 1);
	sn_sandbox_row_clear(&got);
	assert_int_equal(create_serial(st, "bbb", "10.200.0.6"), 3);
	sn_store_close(st);
}

/* Runs sql on the database in dir, as an older or newer sandnetd would have left it. */
static void raw_exec(const char *sql)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/sandnet.db", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* A database of schema 1 (before serials) gets one per sandbox, in row order, and the next
 * sandbox the one after. */
static void test_migration_serials(void **state)
{
	(void)state;
	raw_exec(
		"CREATE TABLE sandboxes (id TEXT PRIMARY KEY, team TEXT NOT NULL, state INTEGER NOT NULL,"
		" addr4 TEXT NOT NULL UNIQUE, addr6 TEXT UNIQUE, labels TEXT NOT NULL,"
		" created_at INTEGER NOT NULL, revision INTEGER NOT NULL) STRICT;"
		"CREATE TABLE revisions (sandbox TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE"
		" CASCADE, revision INTEGER NOT NULL, policy TEXT NOT NULL, at INTEGER NOT NULL,"
		" PRIMARY KEY (sandbox, revision)) STRICT, WITHOUT ROWID;"
		"CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, sandbox TEXT NOT NULL,"
		" kind TEXT NOT NULL, revision INTEGER NOT NULL) STRICT;"
		"INSERT INTO sandboxes VALUES ('old1', 't', 0, '10.200.0.2', NULL, '{}', 1, 1);"
		"INSERT INTO sandboxes VALUES ('old2', 't', 0, '10.200.0.6', NULL, '{}', 1, 1);"
		"INSERT INTO revisions VALUES ('old1', 1, '{}', 1), ('old2', 1, '{}', 1);"
		"PRAGMA user_version = 1;");
	struct sn_store *st = open_store();
	assert_int_equal(sn_store_schema_version(st), 2);
	assert_int_equal(stored_serial(st, "old1"), 1);
	assert_int_equal(stored_serial(st, "old2"), 2);
	assert_int_equal(create_serial(st, "new", "10.200.0.10"), 3);
	sn_store_close(st);
}

static void test_newer_schema_refused(void **state)
{
	(void)state;
	raw_exec("PRAGMA user_version = 99");
	struct sn_store *st;
	char err[256];
	assert_int_equal(sn_store_open(dir, &st, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "newer than this sandnetd"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_serials, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
