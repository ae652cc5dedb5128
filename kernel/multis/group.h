/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The groups of one namespace and their members.
 *
 *   group   a group address, its flags and an RCU-published, sorted array of
 *           pointers to its members (struct multis_members);
 *   member  an address and its counters; a member object lives from the JOIN
 *           that adds it to the QUIT/DEL/CLEAR that removes it, across any
 *           number of array republishes, so its counters survive changes to
 *           the other members.
 *
 * Lookups on the data path are lock-free (RCU); every change holds
 * multis_net.lock.  multic's counterpart is table.h: its entries map a
 * server and port to a group, a different concept, hence the other name.
 */
#ifndef _MULTIS_GROUP_H
#define _MULTIS_GROUP_H

#include "stats.h"

#include <net/ipv6.h>
#include <linux/list.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <net/dst_cache.h>

struct multis_net;

/*
 * What a copy's route lookup depends on besides the member's address: the
 * original's source, output interface or L3 domain, mark, uid, ports, TOS
 * and protocol.  Compared as bytes: no implicit padding, zero fills the
 * rest (protocol is never 0, so an unused one never matches).
 */
struct multis_flow_key {
	__be32 saddr;
	int oif;
	u32 mark;
	kuid_t uid;
	__be16 sport;
	__be16 dport;
	u8 tos;
	u8 protocol;
	u16 zero;
};

/*
 * @dst_cache holds, per CPU, the route of the last copy this CPU sent to
 * the member, for the flow key in @route_key on the same CPU: a copy whose
 * key matches takes the cached route if dst_check() still accepts it (any
 * routing change, a new PMTU exception or the device going down makes it
 * fail), anything else is looked up in full and replaces both.  Both are
 * only touched by the data path, with BH disabled (and multis_xmit_guard's
 * local lock on RT), and freed with the member after a grace period.
 * Only IPv4 members use them: an IPv6 copy is looked up in full each time.
 *
 * Addresses of both families are struct in6_addr: an IPv4 group or member is
 * kept IPv4-mapped (::ffff:a.b.c.d), which netlink never accepts as an IPv6
 * address, so the families cannot collide.  A group's members are of its
 * family.
 */
struct multis_member {
	struct in6_addr addr;
	struct dst_cache dst_cache;
	struct multis_flow_key __percpu *route_key;
	struct multis_stats stats;
	struct rcu_head rcu;
};

struct multis_members {
	struct rcu_head rcu;
	unsigned int count;
	struct multis_member *member[];	/* sorted by address */
};

struct multis_group {
	struct hlist_node hnode;	/* multis_net.groups, RCU */
	struct list_head lnode;		/* multis_net.group_list, sorted */
	struct in6_addr addr;
	u32 flags;			/* MULTIS_GROUP_F_* */
	struct multis_members __rcu *members;	/* NULL: no member */
	struct multis_stats stats;
	struct rcu_head rcu;
};

void multis_group_init(struct multis_net *pn);
void multis_group_uninit(struct multis_net *pn);

struct multis_group *multis_group_lookup_rcu(struct multis_net *pn,
					     const struct in6_addr *addr);
struct multis_group *multis_group_find(struct multis_net *pn,
				       const struct in6_addr *addr);
struct multis_group *multis_group_of_member(struct multis_net *pn,
					    const struct in6_addr *addr);
struct multis_members *multis_group_members(struct multis_net *pn,
					    struct multis_group *group);
unsigned int multis_group_member_count(struct multis_net *pn,
				       struct multis_group *group);
unsigned int multis_members_search(const struct multis_members *members,
				   const struct in6_addr *addr);
bool multis_members_has(const struct multis_members *members,
			const struct in6_addr *addr);
int multis_group_join(struct multis_net *pn, struct multis_group *group,
		      const struct in6_addr *addr, u32 flags,
		      const struct in6_addr *add, unsigned int n);
int multis_group_quit(struct multis_net *pn, struct multis_group *group,
		      const struct in6_addr *del, unsigned int n);
void multis_group_delete(struct multis_net *pn, struct multis_group *group);
void multis_group_clear(struct multis_net *pn);
void multis_group_reset_stats(struct multis_net *pn);
void multis_addrs_sort_unique(struct in6_addr *addr, unsigned int *n);

static inline bool multis_addr_is_v4(const struct in6_addr *addr)
{
	return ipv6_addr_v4mapped(addr);
}

#endif /* _MULTIS_GROUP_H */
