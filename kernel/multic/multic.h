/* SPDX-License-Identifier: GPL-2.0 */
/*
 * multic: the receiving side of multicast-proxy.  A unicast copy made by a
 * multis server (marked with the marker TOS) from a configured server
 * address to a configured UDP port is turned back into the multicast or
 * broadcast datagram it was made from, before the routing decision.
 *
 * The module header: its parameters and the state of one network namespace.
 * One header per concept besides: stats.h (counters), table.h (entries),
 * hook.h (the data path), netlink.h (the family), as in multis.
 *
 * Locking: the data path (hook.c) only reads, under RCU.  Every change
 * happens under multic_net.lock; what it removes is freed after a grace
 * period.
 */

#ifndef _MULTIC_H
#define _MULTIC_H

#include "stats.h"

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rhashtable-types.h>
#include <linux/types.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

/* Module parameters (main.c): they may change at any time, READ_ONCE(). */
extern unsigned int multic_max_groups;
extern unsigned int multic_max_entries;
extern u8 multic_marker_tos;

/* The two families an entry can be of: each has its own hook. */
enum multic_family {
	MULTIC_IPV4,
	MULTIC_IPV6,
	MULTIC_FAMILIES,
};

/* The state of one network namespace. */
struct multic_net {
	/* Serialises every change, and every reader of the counters' base. */
	struct mutex lock;
	/* struct multic_entry by key: RCU lookups on the data path. */
	struct rhashtable entries;
	/* The same entries in insertion order: dumps. */
	struct list_head entry_list;
	/* struct multic_group by address (both families): the group limit. */
	struct rhashtable groups;
	unsigned int entry_count;
	/* The entries of each family (enum multic_family). */
	unsigned int family_entries[MULTIC_FAMILIES];
	/* Distinct group addresses the entries map to. */
	unsigned int group_count;
	/* Moves on with every change of the entries; never 0. */
	u32 generation;
	/*
	 * The configuration's generation (GET_STATS, see the uapi header):
	 * random at first, one more per request that changed the entries or
	 * the restored mark.
	 */
	u64 config_gen;
	/* MULTIC_CMD_SET_RESTORED was sent (see the uapi header). */
	bool restored;
	/*
	 * Each family's hook and defragmentation registered (entries of that
	 * family exist): hook.c.
	 */
	bool hooked[MULTIC_FAMILIES];
	/* Namespace-wide counters. */
	struct multic_stats stats;
};

extern unsigned int multic_net_id;

static inline struct multic_net *multic_pernet(const struct net *net)
{
	return net_generic(net, multic_net_id);
}

#endif /* _MULTIC_H */
