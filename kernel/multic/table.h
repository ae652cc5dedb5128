/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The entries of one namespace: (server address, UDP port) -> group address,
 * port 0 meaning any port.  Both families share the table: an IPv4 server
 * or group is kept as its IPv4-mapped address (::ffff:a.b.c.d), which the
 * kernel never accepts as IPv6, so the two cannot collide.  An entry's
 * server and group are of one family.  Lookups are lock-free (RCU); every
 * change holds multic_net.lock.
 */

#ifndef _MULTIC_TABLE_H
#define _MULTIC_TABLE_H

#include "multic.h"
#include "stats.h"

#include <linux/in6.h>
#include <linux/inet.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/rcupdate.h>
#include <linux/rhashtable-types.h>
#include <linux/types.h>
#include <net/ipv6.h>

struct multic_net;
struct compat_nlerr;

/* Hashed and compared as bytes: no implicit padding, zero fills the rest. */
struct multic_key {
	struct in6_addr server;	/* IPv4: IPv4-mapped */
	__be16 port;		/* network order; 0 = any port */
	u16 zero;
};

/*
 * One distinct group address the entries map to, with the number of
 * entries that do: the group limit counts these.  Its address never
 * changes; the data path reads it through multic_entry.group, so the
 * object is freed only after a grace period.
 */
struct multic_group {
	struct rhash_head node;		/* in multic_net.groups, under the lock */
	struct in6_addr addr;		/* IPv4: IPv4-mapped */
	unsigned int refs;		/* under the lock */
	struct rcu_head rcu;
};

struct multic_entry {
	struct rhash_head node;		/* in multic_net.entries */
	struct multic_key key;
	/*
	 * The group this entry maps to (and holds a reference to):
	 * rcu_assign_pointer() under the lock, rcu_dereference() on the
	 * data path, which so never sees half of a 16-byte address.
	 */
	struct multic_group __rcu *group;
	struct list_head list;		/* in multic_net.entry_list, under the lock */
	struct multic_stats stats;
	struct rcu_head rcu;
};

static inline bool multic_addr_is_v4(const struct in6_addr *addr)
{
	return ipv6_addr_v4mapped(addr);
}

static inline enum multic_family multic_key_family(const struct multic_key *key)
{
	return multic_addr_is_v4(&key->server) ? MULTIC_IPV4 : MULTIC_IPV6;
}

/* An address of either family as text: a.b.c.d, or compressed IPv6. */
static inline const char *multic_addr_str(const struct in6_addr *addr,
					  char *buf)
{
	if (multic_addr_is_v4(addr))
		snprintf(buf, INET6_ADDRSTRLEN, "%pI4", &addr->s6_addr32[3]);
	else
		snprintf(buf, INET6_ADDRSTRLEN, "%pI6c", addr);
	return buf;
}

/* "[2001:db8::1]:5000" or "10.0.0.1:5000": an entry's key, for messages. */
#define MULTIC_KEYSTRLEN	(INET6_ADDRSTRLEN + sizeof("[]:65535"))

static inline const char *multic_key_str(const struct multic_key *key,
					 char *buf)
{
	if (multic_addr_is_v4(&key->server))
		snprintf(buf, MULTIC_KEYSTRLEN, "%pI4:%u",
			 &key->server.s6_addr32[3], ntohs(key->port));
	else
		snprintf(buf, MULTIC_KEYSTRLEN, "[%pI6c]:%u", &key->server,
			 ntohs(key->port));
	return buf;
}

int multic_table_init(struct multic_net *mn);
void multic_table_uninit(struct multic_net *mn);

struct multic_entry *multic_table_lookup(struct multic_net *mn,
					 const struct in6_addr *server,
					 __be16 port);
struct multic_entry *multic_table_find(struct multic_net *mn,
				       const struct multic_key *key);
const struct in6_addr *multic_entry_group(struct multic_net *mn,
					  const struct multic_entry *entry);
int multic_table_add(struct multic_net *mn, const struct multic_key *key,
		     const struct in6_addr *group, bool replace,
		     struct compat_nlerr *err);
int multic_table_del(struct multic_net *mn, const struct multic_key *key,
		     struct compat_nlerr *err);
void multic_table_clear(struct multic_net *mn);
void multic_table_reset_stats(struct multic_net *mn);

#endif /* _MULTIC_TABLE_H */
