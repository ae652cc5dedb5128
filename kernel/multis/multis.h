/* SPDX-License-Identifier: GPL-2.0 */
/*
 * multis: the sending side of multicast-proxy.  Locally sent datagrams to a
 * configured group are copied once per member and sent as unicast.
 *
 * The module header: its parameters and the state of one network namespace.
 * One header per concept besides: stats.h (counters), group.h (groups and
 * members), hook.h (the data path), netlink.h (the family), as in multic.
 *
 * Locking: the data path (hook.c) only reads, under RCU.  Every change
 * happens under multis_net.lock, builds a new member array and publishes it
 * with rcu_assign_pointer(); what it replaces is freed after a grace period.
 */
#ifndef _MULTIS_H
#define _MULTIS_H

#include "stats.h"

#include <linux/hashtable.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

#define MULTIS_GROUP_HASH_BITS	8

/* Module parameters (main.c): they may change at any time, READ_ONCE(). */
extern unsigned int multis_max_groups;
extern unsigned int multis_max_members;
extern u8 multis_marker_tos;

/* The state of one network namespace. */
struct multis_net {
	/* Serialises every change, and every reader of the counters' base. */
	struct mutex lock;
	/* struct multis_group by address: RCU lookups on the data path. */
	DECLARE_HASHTABLE(groups, MULTIS_GROUP_HASH_BITS);
	/* The same groups by address: dumps. */
	struct list_head group_list;
	unsigned int group_count;
	/* Moves on with every change of the groups; never 0. */
	u32 generation;
	/*
	 * The configuration's generation (GET_STATS, see the uapi header):
	 * random at first, one more per request that changed the groups, their
	 * members or the restored mark.
	 */
	u64 config_gen;
	/* MULTIS_CMD_SET_RESTORED was sent (see the uapi header). */
	bool restored;
	/* LOCAL_OUT hook registered (groups exist): hook.c. */
	bool hooked;
	/* Namespace-wide counters. */
	struct multis_stats stats;
};

extern unsigned int multis_net_id;

static inline struct multis_net *multis_pernet(const struct net *net)
{
	return net_generic(net, multis_net_id);
}

#endif /* _MULTIS_H */
