/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The entries of one namespace: (server address, UDP port) -> group address,
 * port 0 meaning any port.  Lookups are lock-free (RCU); every change holds
 * multic_net.lock.
 */

#ifndef _MULTIC_TABLE_H
#define _MULTIC_TABLE_H

#include "stats.h"

#include <linux/list.h>
#include <linux/rhashtable-types.h>
#include <linux/types.h>

struct multic_net;
struct multic_group;
struct compat_nlerr;

/* Hashed and compared as bytes: no implicit padding, zero fills the rest. */
struct multic_key {
	__be32 server;
	__be16 port;		/* network order; 0 = any port */
	u16 zero;
};

struct multic_entry {
	struct rhash_head node;		/* in multic_net.entries */
	struct multic_key key;
	/* WRITE_ONCE() under the lock, READ_ONCE() on the data path. */
	__be32 group;
	/* The reference to @group this entry holds, under the lock. */
	struct multic_group *ref;
	struct list_head list;		/* in multic_net.entry_list, under the lock */
	struct multic_stats stats;
	struct rcu_head rcu;
};

int multic_table_init(struct multic_net *mn);
void multic_table_uninit(struct multic_net *mn);

struct multic_entry *multic_table_lookup(struct multic_net *mn,
					 __be32 server, __be16 port);
struct multic_entry *multic_table_find(struct multic_net *mn,
				       const struct multic_key *key);
int multic_table_add(struct multic_net *mn, const struct multic_key *key,
		     __be32 group, bool replace,
		     struct compat_nlerr *err);
int multic_table_del(struct multic_net *mn, const struct multic_key *key,
		     struct compat_nlerr *err);
void multic_table_clear(struct multic_net *mn);
void multic_table_reset_stats(struct multic_net *mn);

#endif /* _MULTIC_TABLE_H */
