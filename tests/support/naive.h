/* A naive reference evaluator of the policy semantics, straight from DESIGN.md section 1: a
 * linear walk over the rules and their entries. The differential test and bench/decide compare
 * the compiled engine against it. */
#ifndef SN_TEST_NAIVE_H
#define SN_TEST_NAIVE_H

#include <sandnet/snapshot.h>

struct sn_decision naive_decide(const struct sn_policy *p, const struct sn_query *q);
bool naive_dns_allowed(const struct sn_policy *p, const char *name, int *rule);

#endif
