/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Exact per-CPU counters, kept per entry and per namespace.  The data path
 * only ever adds to its own CPU's counters; RESET_STATS does not write them,
 * it remembers their sum as the new zero (base).
 */

#ifndef _MULTIC_STATS_H
#define _MULTIC_STATS_H

#include <linux/gfp.h>
#include <linux/percpu.h>
#include <linux/types.h>
#include <linux/u64_stats_sync.h>

/* A snapshot, in the order of enum multic_stats_attr. */
struct multic_counters {
	u64 packets;		/* copies restored to their group */
	u64 bytes;		/* IP bytes of those */
	u64 not_local;		/* marked and matched, but not addressed to this host */
	u64 drop_nomem;		/* could not be made writable: dropped */
	u64 no_entry;		/* namespace only: marked, but no entry matched */
	u64 not_udp;		/* namespace only: marked IPv6, not plain UDP: left alone */
};

struct multic_pcpu_stats {
	u64_stats_t packets;
	u64_stats_t bytes;
	u64_stats_t not_local;
	u64_stats_t drop_nomem;
	u64_stats_t no_entry;
	u64_stats_t not_udp;
	struct u64_stats_sync syncp;
};

struct multic_stats {
	struct multic_pcpu_stats __percpu *pcpu;
	struct multic_counters base;	/* the sum at the last reset, under multic_net.lock */
};

int multic_stats_init(struct multic_stats *stats, gfp_t gfp);
void multic_stats_uninit(struct multic_stats *stats);
long multic_stats_live(void);
void multic_stats_read(const struct multic_stats *stats, struct multic_counters *counters);
void multic_stats_reset(struct multic_stats *stats);

/* Data path helpers: called with bottom halves disabled. */
static inline void multic_stats_restored(struct multic_stats *stats,
					 unsigned int packets,
					 unsigned int bytes)
{
	struct multic_pcpu_stats *pcpu = this_cpu_ptr(stats->pcpu);

	u64_stats_update_begin(&pcpu->syncp);
	u64_stats_add(&pcpu->packets, packets);
	u64_stats_add(&pcpu->bytes, bytes);
	u64_stats_update_end(&pcpu->syncp);
}

static inline void multic_stats_not_local(struct multic_stats *stats)
{
	struct multic_pcpu_stats *pcpu = this_cpu_ptr(stats->pcpu);

	u64_stats_update_begin(&pcpu->syncp);
	u64_stats_inc(&pcpu->not_local);
	u64_stats_update_end(&pcpu->syncp);
}

static inline void multic_stats_drop_nomem(struct multic_stats *stats)
{
	struct multic_pcpu_stats *pcpu = this_cpu_ptr(stats->pcpu);

	u64_stats_update_begin(&pcpu->syncp);
	u64_stats_inc(&pcpu->drop_nomem);
	u64_stats_update_end(&pcpu->syncp);
}

static inline void multic_stats_no_entry(struct multic_stats *stats)
{
	struct multic_pcpu_stats *pcpu = this_cpu_ptr(stats->pcpu);

	u64_stats_update_begin(&pcpu->syncp);
	u64_stats_inc(&pcpu->no_entry);
	u64_stats_update_end(&pcpu->syncp);
}

static inline void multic_stats_not_udp(struct multic_stats *stats)
{
	struct multic_pcpu_stats *pcpu = this_cpu_ptr(stats->pcpu);

	u64_stats_update_begin(&pcpu->syncp);
	u64_stats_inc(&pcpu->not_udp);
	u64_stats_update_end(&pcpu->syncp);
}

#endif /* _MULTIC_STATS_H */
