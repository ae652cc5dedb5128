/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Exact per-CPU counters, kept per member, per group and per namespace.  The
 * data path only ever adds to its own CPU's counters; RESET_STATS does not
 * write them, it remembers their sum as the new zero (base).
 */
#ifndef _MULTIS_STATS_H
#define _MULTIS_STATS_H

#include <linux/gfp.h>
#include <linux/types.h>
#include <linux/u64_stats_sync.h>

/*
 * Counters.  A member has the first MULTIS_CTR_MEMBER_N of them; groups and
 * the namespace have all MULTIS_CTR_N.  PACKETS and BYTES count every copy
 * handed to ip_local_out() (a GSO skb as its segments); DROP_XMIT counts the
 * ones of those it refused, DROP_NOMEM and DROP_NO_ROUTE the copies never
 * made, DROP_TOO_BIG the copies not sent: DF, no fragmenting allowed, and
 * larger than the MTU towards the member.  DATAGRAMS counts originals
 * fanned out, DROP_NO_MEMBER originals to a group without members.
 */
enum multis_ctr {
	MULTIS_CTR_PACKETS,
	MULTIS_CTR_BYTES,
	MULTIS_CTR_DROP_NOMEM,
	MULTIS_CTR_DROP_NO_ROUTE,
	MULTIS_CTR_DROP_XMIT,
	MULTIS_CTR_DROP_TOO_BIG,
	MULTIS_CTR_MEMBER_N,
	MULTIS_CTR_DATAGRAMS = MULTIS_CTR_MEMBER_N,
	MULTIS_CTR_DROP_NO_MEMBER,
	MULTIS_CTR_N,
};

struct multis_pcpu_stats {
	struct u64_stats_sync syncp;
	u64_stats_t ctr[];
};

/*
 * Reset does not touch the per-CPU counters, which the data path owns: it
 * records their sums in @base, and readers report sum - base.
 */
struct multis_stats {
	struct multis_pcpu_stats __percpu *pcpu;
	unsigned int n;
	u64 base[MULTIS_CTR_N];
};

int multis_stats_init(struct multis_stats *stats, unsigned int n, gfp_t gfp);
void multis_stats_uninit(struct multis_stats *stats);
long multis_stats_live(void);
void multis_stats_add(struct multis_stats *stats, const u64 *delta);
void multis_stats_read(const struct multis_stats *stats, u64 *val);
void multis_stats_reset(struct multis_stats *stats);

#endif /* _MULTIS_STATS_H */
