// SPDX-License-Identifier: GPL-2.0
/*
 * Exact per-CPU counters: allocation, summing and reset.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"
#include "stats.h"

#include <linux/atomic.h>
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/moduleparam.h>
#include <linux/string.h>
#include <linux/sysfs.h>

/*
 * Per-CPU counter blocks alive: one per namespace, group, member and entry
 * that exists or waits for its RCU grace period.  Read-only module parameter
 * live_stats (the soak test checks it returns to its value at load after a
 * clear), and checked to be zero when the module unloads.
 */
static atomic_long_t multic_live_stats = ATOMIC_LONG_INIT(0);

static int multic_live_stats_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&multic_live_stats));
}

static const struct kernel_param_ops multic_live_stats_ops = {
	.get = multic_live_stats_get,
};
module_param_cb(live_stats, &multic_live_stats_ops, NULL, 0444);
MODULE_PARM_DESC(live_stats, "Per-CPU counter blocks alive (namespaces, groups, members, entries)");

long multic_stats_live(void)
{
	return atomic_long_read(&multic_live_stats);
}

/* @gfp: GFP_KERNEL_ACCOUNT for what a request creates (charged to its memcg). */
int multic_stats_init(struct multic_stats *stats, gfp_t gfp)
{
	int cpu;

	stats->pcpu = alloc_percpu_gfp(struct multic_pcpu_stats, gfp);
	if (!stats->pcpu)
		return -ENOMEM;
	atomic_long_inc(&multic_live_stats);
	for_each_possible_cpu(cpu)
		u64_stats_init(&per_cpu_ptr(stats->pcpu, cpu)->syncp);
	memset(&stats->base, 0, sizeof(stats->base));
	return 0;
}

void multic_stats_uninit(struct multic_stats *stats)
{
	if (stats->pcpu)
		atomic_long_dec(&multic_live_stats);
	free_percpu(stats->pcpu);
	stats->pcpu = NULL;
}

/* The raw sum over every CPU, since the counters were allocated. */
static void multic_stats_sum(const struct multic_stats *stats,
			     struct multic_counters *sum)
{
	int cpu;

	memset(sum, 0, sizeof(*sum));
	for_each_possible_cpu(cpu) {
		const struct multic_pcpu_stats *pcpu = per_cpu_ptr(stats->pcpu, cpu);
		u64 packets, bytes, not_local, drop_nomem, no_entry, not_udp;
		unsigned int start;

		do {
			start = u64_stats_fetch_begin(&pcpu->syncp);
			packets = u64_stats_read(&pcpu->packets);
			bytes = u64_stats_read(&pcpu->bytes);
			not_local = u64_stats_read(&pcpu->not_local);
			drop_nomem = u64_stats_read(&pcpu->drop_nomem);
			no_entry = u64_stats_read(&pcpu->no_entry);
			not_udp = u64_stats_read(&pcpu->not_udp);
		} while (u64_stats_fetch_retry(&pcpu->syncp, start));

		sum->packets += packets;
		sum->bytes += bytes;
		sum->not_local += not_local;
		sum->drop_nomem += drop_nomem;
		sum->no_entry += no_entry;
		sum->not_udp += not_udp;
	}
}

/* The counters since the last reset.  Caller holds multic_net.lock. */
void multic_stats_read(const struct multic_stats *stats,
		       struct multic_counters *counters)
{
	multic_stats_sum(stats, counters);
	counters->packets -= stats->base.packets;
	counters->bytes -= stats->base.bytes;
	counters->not_local -= stats->base.not_local;
	counters->drop_nomem -= stats->base.drop_nomem;
	counters->no_entry -= stats->base.no_entry;
	counters->not_udp -= stats->base.not_udp;
}

/* Caller holds multic_net.lock. */
void multic_stats_reset(struct multic_stats *stats)
{
	multic_stats_sum(stats, &stats->base);
}
