// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU counters of the namespace, a group or a member.
 *
 * The data path adds with BH disabled, so the per-CPU writer is never
 * interrupted by another writer on the same CPU; readers sum every CPU.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"
#include "stats.h"

#include <linux/atomic.h>
#include <linux/moduleparam.h>
#include <linux/overflow.h>
#include <linux/percpu.h>
#include <linux/string.h>
#include <linux/sysfs.h>

/*
 * Per-CPU counter blocks alive: one per namespace, group, member and entry
 * that exists or waits for its RCU grace period.  Read-only module parameter
 * live_stats (the soak test checks it returns to its value at load after a
 * clear), and checked to be zero when the module unloads.
 */
static atomic_long_t multis_live_stats = ATOMIC_LONG_INIT(0);

static int multis_live_stats_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&multis_live_stats));
}

static const struct kernel_param_ops multis_live_stats_ops = {
	.get = multis_live_stats_get,
};
module_param_cb(live_stats, &multis_live_stats_ops, NULL, 0444);
MODULE_PARM_DESC(live_stats, "Per-CPU counter blocks alive (namespaces, groups, members, entries)");

long multis_stats_live(void)
{
	return atomic_long_read(&multis_live_stats);
}

/* @gfp: GFP_KERNEL_ACCOUNT for what a request creates (charged to its memcg). */
int multis_stats_init(struct multis_stats *stats, unsigned int n, gfp_t gfp)
{
	struct multis_pcpu_stats *p;
	int cpu;

	stats->pcpu = __alloc_percpu_gfp(struct_size(p, ctr, n),
					 __alignof__(struct multis_pcpu_stats),
					 gfp);
	if (!stats->pcpu)
		return -ENOMEM;
	atomic_long_inc(&multis_live_stats);
	for_each_possible_cpu(cpu)
		u64_stats_init(&per_cpu_ptr(stats->pcpu, cpu)->syncp);
	stats->n = n;
	memset(stats->base, 0, sizeof(stats->base));
	return 0;
}

void multis_stats_uninit(struct multis_stats *stats)
{
	if (stats->pcpu)
		atomic_long_dec(&multis_live_stats);
	free_percpu(stats->pcpu);
	stats->pcpu = NULL;
}

/* Add @delta[0..n-1] to this CPU's counters.  BH must be disabled. */
void multis_stats_add(struct multis_stats *stats, const u64 *delta)
{
	struct multis_pcpu_stats *p = this_cpu_ptr(stats->pcpu);
	unsigned int i;

	u64_stats_update_begin(&p->syncp);
	for (i = 0; i < stats->n; i++)
		if (delta[i])
			u64_stats_add(&p->ctr[i], delta[i]);
	u64_stats_update_end(&p->syncp);
}

static void multis_stats_sum(const struct multis_stats *stats, u64 *sum)
{
	unsigned int i;
	int cpu;

	memset(sum, 0, stats->n * sizeof(*sum));
	for_each_possible_cpu(cpu) {
		const struct multis_pcpu_stats *p;
		u64 val[MULTIS_CTR_N];
		unsigned int start;

		p = per_cpu_ptr(stats->pcpu, cpu);
		do {
			start = u64_stats_fetch_begin(&p->syncp);
			for (i = 0; i < stats->n; i++)
				val[i] = u64_stats_read(&p->ctr[i]);
		} while (u64_stats_fetch_retry(&p->syncp, start));
		for (i = 0; i < stats->n; i++)
			sum[i] += val[i];
	}
}

/* @val[0..n-1]: the counters since the last reset. */
void multis_stats_read(const struct multis_stats *stats, u64 *val)
{
	unsigned int i;

	multis_stats_sum(stats, val);
	for (i = 0; i < stats->n; i++)
		val[i] -= stats->base[i];
}

/*
 * Start counting from zero.  The per-CPU counters only ever grow, so taking
 * their current sums as the new base is exact even under traffic.  Callers
 * serialize resets and reads (multis_net.lock).
 */
void multis_stats_reset(struct multis_stats *stats)
{
	multis_stats_sum(stats, stats->base);
}
