/* SPDX-License-Identifier: GPL-2.0 */
/*
 * multis: the sending side of multicast-proxy.  Locally sent datagrams to a
 * configured group are copied once per member and sent as unicast.
 *
 * Objects, per network namespace (struct multis_net):
 *   group   a group address, its flags and an RCU-published, sorted array of
 *           pointers to its members (struct multis_members);
 *   member  an address and its counters; a member object lives from the JOIN
 *           that adds it to the QUIT/DEL/CLEAR that removes it, across any
 *           number of array republishes, so its counters survive changes to
 *           the other members.
 *
 * Locking: the data path (hook.c) only reads, under RCU.  Every change
 * happens under multis_net.lock, builds a new member array and publishes it
 * with rcu_assign_pointer(); what it replaces is freed after a grace period.
 */
#ifndef _MULTIS_H
#define _MULTIS_H

#include <linux/gfp.h>
#include <linux/hashtable.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <linux/u64_stats_sync.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

#include <uapi/linux/multicast_proxy.h>

#define MULTIS_IPPROTO_VRRP	112	/* not in <uapi/linux/in.h> */
#define MULTIS_MIN_TTL		64
#define MULTIS_GROUP_HASH_BITS	8

/* Module parameters (main.c), read-only once loaded. */
extern unsigned int multis_max_groups;
extern unsigned int multis_max_members;
extern u8 multis_marker_tos;

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

struct multis_member {
	__be32 addr;
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
	__be32 addr;
	u32 flags;			/* MULTIS_GROUP_F_* */
	struct multis_members __rcu *members;	/* NULL: no member */
	struct multis_stats stats;
	struct rcu_head rcu;
};

struct multis_net {
	struct mutex lock;		/* every change, every control read */
	DECLARE_HASHTABLE(groups, MULTIS_GROUP_HASH_BITS);
	struct list_head group_list;	/* by address, for dumps */
	unsigned int group_count;
	u32 generation;			/* bumped by every change; never 0 */
	bool restored;			/* MULTIS_CMD_SET_RESTORED was sent */
	bool hooked;			/* LOCAL_OUT hook registered (groups exist) */
	struct multis_stats stats;
};

extern unsigned int multis_net_id;

static inline struct multis_net *multis_pernet(const struct net *net)
{
	return net_generic(net, multis_net_id);
}

/* stats.c */
int multis_stats_init(struct multis_stats *stats, unsigned int n, gfp_t gfp);
void multis_stats_free(struct multis_stats *stats);
long multis_stats_live(void);
void multis_stats_add(struct multis_stats *stats, const u64 *delta);
void multis_stats_read(const struct multis_stats *stats, u64 *val);
void multis_stats_reset(struct multis_stats *stats);

/* group.c */
void multis_net_init_groups(struct multis_net *pn);
struct multis_group *multis_group_lookup_rcu(struct multis_net *pn,
					     __be32 addr);
struct multis_group *multis_group_find(struct multis_net *pn, __be32 addr);
struct multis_group *multis_group_of_member(struct multis_net *pn,
					    __be32 addr);
struct multis_members *multis_group_members(struct multis_net *pn,
					    struct multis_group *group);
unsigned int multis_group_member_count(struct multis_net *pn,
				       struct multis_group *group);
unsigned int multis_members_search(const struct multis_members *members,
				   __be32 addr);
bool multis_members_has(const struct multis_members *members, __be32 addr);
int multis_group_join(struct multis_net *pn, __be32 addr, u32 flags,
		      const __be32 *add, unsigned int n);
int multis_group_quit(struct multis_net *pn, struct multis_group *group,
		      const __be32 *del, unsigned int n);
void multis_group_delete(struct multis_net *pn, struct multis_group *group);
void multis_groups_clear(struct multis_net *pn);
void multis_groups_reset_stats(struct multis_net *pn);
void multis_addrs_sort_unique(__be32 *addr, unsigned int *n);

/* hook.c */
int multis_hook_attach(struct net *net, struct multis_net *pn);
void multis_hook_detach(struct net *net, struct multis_net *pn);
void multis_hook_sync(struct net *net, struct multis_net *pn);

/* netlink.c */
int multis_genl_init(void);
void multis_genl_exit(void);

#endif /* _MULTIS_H */
