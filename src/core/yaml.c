/* YAML policy documents: libyaml events -> a JSON tree of the same shape, so that every dialect
 * has one decoder. Plain scalars resolve as in the YAML 1.2 core schema (null, booleans,
 * integers, floats, strings); quoted scalars are strings. Duplicate keys, aliases and a second
 * document are refused. Core layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "internal.h"

struct frame {
	json_t *node;
	char *key;   /* pending mapping key, owned */
	size_t plen; /* length of the path before this frame's part */
};

struct ybuild {
	struct dec *d;
	struct frame st[SN_LIMIT_DEPTH + 1];
	int depth;
	json_t *root;
	char path[SN_ERR_PATH_MAX];
	bool failed;
};

static bool is_int(const char *s, long long *out)
{
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 18)
		return false;
	*out = strtoll(s, NULL, 10);
	return true;
}

static bool is_float(const char *s, double *out)
{
	/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	size_t intd = strspn(p, "0123456789");
	p += intd;
	size_t frac = 0;
	if (*p == '.') {
		p++;
		frac = strspn(p, "0123456789");
		p += frac;
	}
	if (!intd && !frac)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		size_t ed = strspn(p, "0123456789");
		if (!ed)
			return false;
		p += ed;
	}
	if (*p)
		return false;
	*out = strtod(s, NULL);
	return true;
}

static json_t *scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	if (tag && strcmp(tag, YAML_STR_TAG) == 0)
		return json_stringn(s, len);
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, len);
	if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
	    strcmp(s, "NULL") == 0)
		return json_null();
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
		return json_true();
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
		return json_false();
	long long i;
	if (is_int(s, &i))
		return json_integer(i);
	double f;
	if (is_float(s, &f))
		return json_real(f);
	return json_stringn(s, len);
}

static void fail(struct ybuild *b, enum sn_errc code, const char *msg)
{
	if (!b->failed)
		sn_errs_add(b->d->errs, code, b->path, "%s", msg);
	b->failed = true;
}

static void key_not_string(struct ybuild *b, const yaml_event_t *ev)
{
	char msg[SN_ERR_MSG_MAX];
	snprintf(msg, sizeof(msg),
		 "a key is not a string (line %zu): a list or mapping cannot be a key",
		 ev->start_mark.line + 1);
	fail(b, SN_ERR_SYNTAX, msg);
}

/* Adds a finished node to the container on top of the stack (or makes it the root).
 * Takes ownership of node. */
static void attach(struct ybuild *b, json_t *node, const yaml_event_t *ev, bool is_key)
{
	if (!node) {
		b->d->nomem = true;
		b->failed = true;
		return;
	}
	if (b->depth == 0) {
		b->root = node;
		return;
	}
	struct frame *f = &b->st[b->depth - 1];
	if (json_is_array(f->node)) {
		if (json_array_append_new(f->node, node))
			b->d->nomem = b->failed = true;
		return;
	}
	/* mapping: a key first, then its value */
	if (!f->key) {
		if (!is_key || !json_is_string(node)) { /* a scalar key is always read as one */
			json_decref(node);
			key_not_string(b, ev);
			return;
		}
		const char *k = json_string_value(node);
		f->key = strdup(k);
		json_decref(node);
		if (!f->key) {
			b->d->nomem = b->failed = true;
			return;
		}
		size_t o = f->plen;
		snprintf(b->path + o, sizeof(b->path) - o, "%s%s", o ? "." : "", f->key);
		if (json_object_get(f->node, f->key)) {
			char msg[SN_ERR_MSG_MAX];
			snprintf(msg, sizeof(msg), "duplicate key %s (line %zu)", SN_QUOTE(f->key),
				 ev->start_mark.line + 1);
			fail(b, SN_ERR_SYNTAX, msg);
		}
		return;
	}
	if (json_object_set_new(f->node, f->key, node))
		b->d->nomem = b->failed = true;
	free(f->key);
	f->key = NULL;
	b->path[f->plen] = 0;
}

static void push(struct ybuild *b, json_t *node, const yaml_event_t *ev)
{
	if (!node) {
		b->d->nomem = b->failed = true;
		return;
	}
	if (b->depth >= (int)SN_LIMIT_DEPTH) {
		json_decref(node);
		char msg[SN_ERR_MSG_MAX];
		snprintf(msg, sizeof(msg), "the document nests deeper than %u levels",
			 SN_LIMIT_DEPTH);
		sn_errs_add(b->d->errs, SN_ERR_LIMIT, b->path, "%s", msg);
		b->failed = true;
		return;
	}
	(void)ev;
	struct frame *f = &b->st[b->depth++];
	f->node = node;
	f->key = NULL;
	f->plen = strlen(b->path);
}

/* In a sequence, each element extends the path with its index. */
static void seq_index_path(struct ybuild *b)
{
	if (b->depth == 0)
		return;
	struct frame *f = &b->st[b->depth - 1];
	if (json_is_array(f->node)) {
		size_t o = f->plen;
		snprintf(b->path + o, sizeof(b->path) - o, "[%zu]", json_array_size(f->node));
	}
}

static void pop(struct ybuild *b, const yaml_event_t *ev)
{
	struct frame *f = &b->st[--b->depth];
	json_t *node = f->node;
	free(f->key);
	f->key = NULL;
	b->path[f->plen] = 0;
	attach(b, node, ev, false);
	if (b->depth > 0 && json_is_array(b->st[b->depth - 1].node))
		b->path[b->st[b->depth - 1].plen] = 0;
}

json_t *yaml_to_json(const char *buf, size_t len, struct dec *d)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser)) {
		d->nomem = true;
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	struct ybuild *b = calloc(1, sizeof(*b));
	if (!b) {
		yaml_parser_delete(&parser);
		d->nomem = true;
		return NULL;
	}
	b->d = d;
	int docs = 0;
	bool done = false;
	while (!done && !b->failed) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			char msg[SN_ERR_MSG_MAX];
			snprintf(msg, sizeof(msg), "YAML syntax error at line %zu, column %zu: %s%s%s",
				 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
				 parser.problem ? parser.problem : "malformed",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			sn_errs_add(d->errs, SN_ERR_SYNTAX, "", "%s", msg);
			b->failed = true;
			break;
		}
		bool is_key = b->depth > 0 && json_is_object(b->st[b->depth - 1].node) &&
			      !b->st[b->depth - 1].key;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT: done = true; break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1)
				fail(b, SN_ERR_SYNTAX,
				     "the stream holds more than one YAML document; give one policy");
			break;
		case YAML_ALIAS_EVENT:
			fail(b, SN_ERR_SYNTAX, "YAML aliases are not supported in policies");
			break;
		case YAML_SCALAR_EVENT:
			if (ev.data.scalar.anchor) {
				fail(b, SN_ERR_SYNTAX, "YAML anchors are not supported in policies");
				break;
			}
			seq_index_path(b);
			json_t *sv = is_key ? json_stringn((const char *)ev.data.scalar.value,
							   ev.data.scalar.length)
					    : scalar_value(&ev);
			if (!sv) {
				/* libyaml checked the input; escapes can still make bad UTF-8 */
				fail(b, SN_ERR_SYNTAX, "a string is not valid UTF-8");
				break;
			}
			attach(b, sv, &ev, is_key);
			if (!is_key && b->depth > 0 && json_is_array(b->st[b->depth - 1].node))
				b->path[b->st[b->depth - 1].plen] = 0;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (is_key) {
				key_not_string(b, &ev);
				break;
			}
			seq_index_path(b);
			push(b, ev.type == YAML_SEQUENCE_START_EVENT ? json_array() : json_object(),
			     &ev);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT: pop(b, &ev); break;
		default: break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	json_t *root = b->root;
	for (int i = 0; i < b->depth; i++) {
		json_decref(b->st[i].node);
		free(b->st[i].key);
	}
	if (b->failed) {
		json_decref(root);
		root = NULL;
	} else if (!root) {
		root = json_null(); /* empty stream */
	}
	free(b);
	return root;
}
