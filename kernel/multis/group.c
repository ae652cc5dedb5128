// SPDX-License-Identifier: GPL-2.0
/*
 * The group table of a namespace: groups in an RCU hash (for the data path)
 * and a sorted list (for dumps); each group's members in a sorted array
 * published with RCU.
 *
 * Everything but multis_group_lookup_rcu() runs under multis_net.lock and
 * trusts its arguments: netlink.c has validated them and checked the limits.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"
#include "group.h"
#include "multis.h"

#include <linux/overflow.h>
#include <linux/percpu.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <net/ipv6.h>

void multis_group_init(struct multis_net *pn)
{
	hash_init(pn->groups);
	INIT_LIST_HEAD(&pn->group_list);
	pn->group_count = 0;
	pn->generation = 1;
	pn->config_gen = get_random_u64();
	pn->restored = false;
}

static void multis_net_changed(struct multis_net *pn)
{
	/* 0 would mean "no generation" to nl_dump_check_consistent(). */
	if (!++pn->generation)
		pn->generation = 1;
}

/* Both families in one table: IPv4 addresses are kept IPv4-mapped. */
static u32 multis_addr_key(const struct in6_addr *addr)
{
	return ipv6_addr_hash(addr);
}

/* The data path's lookup: the caller is in an RCU read-side section. */
struct multis_group *multis_group_lookup_rcu(struct multis_net *pn,
					     const struct in6_addr *addr)
{
	struct multis_group *group;

	hash_for_each_possible_rcu(pn->groups, group, hnode,
				   multis_addr_key(addr))
		if (ipv6_addr_equal(&group->addr, addr))
			return group;
	return NULL;
}

struct multis_group *multis_group_find(struct multis_net *pn,
				       const struct in6_addr *addr)
{
	struct multis_group *group;

	lockdep_assert_held(&pn->lock);
	hash_for_each_possible(pn->groups, group, hnode, multis_addr_key(addr))
		if (ipv6_addr_equal(&group->addr, addr))
			return group;
	return NULL;
}

struct multis_members *multis_group_members(struct multis_net *pn,
					    struct multis_group *group)
{
	return rcu_dereference_protected(group->members,
					 lockdep_is_held(&pn->lock));
}

unsigned int multis_group_member_count(struct multis_net *pn,
				       struct multis_group *group)
{
	struct multis_members *members = multis_group_members(pn, group);

	return members ? members->count : 0;
}

/* Index of the first member whose address is not below @addr. */
unsigned int multis_members_search(const struct multis_members *members,
				   const struct in6_addr *addr)
{
	unsigned int lo = 0, hi = members ? members->count : 0;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (ipv6_addr_cmp(&members->member[mid]->addr, addr) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool multis_members_has(const struct multis_members *members,
			const struct in6_addr *addr)
{
	unsigned int i = multis_members_search(members, addr);

	return members && i < members->count &&
	       ipv6_addr_equal(&members->member[i]->addr, addr);
}

/* The group that has @addr as a member, if any. */
struct multis_group *multis_group_of_member(struct multis_net *pn,
					    const struct in6_addr *addr)
{
	struct multis_group *group;

	list_for_each_entry(group, &pn->group_list, lnode)
		if (multis_members_has(multis_group_members(pn, group), addr))
			return group;
	return NULL;
}

static int multis_addr_cmp(const void *a, const void *b)
{
	return ipv6_addr_cmp(a, b);
}

/* Sort @addr[0..*n-1] by address and drop duplicates. */
void multis_addrs_sort_unique(struct in6_addr *addr, unsigned int *n)
{
	unsigned int i, out = 0;

	sort(addr, *n, sizeof(*addr), multis_addr_cmp, NULL);
	for (i = 0; i < *n; i++)
		if (!out || !ipv6_addr_equal(&addr[out - 1], &addr[i]))
			addr[out++] = addr[i];
	*n = out;
}

static struct multis_members *multis_members_alloc(unsigned int count)
{
	struct multis_members *members;

	members = kvmalloc(struct_size(members, member, count),
			   GFP_KERNEL_ACCOUNT);
	if (members)
		members->count = count;
	return members;
}

static void multis_members_free_rcu(struct rcu_head *rcu)
{
	kvfree(container_of(rcu, struct multis_members, rcu));
}

static struct multis_member *multis_member_alloc(const struct in6_addr *addr)
{
	struct multis_member *member;

	member = kzalloc(sizeof(*member), GFP_KERNEL_ACCOUNT);
	if (!member)
		return NULL;
	if (multis_stats_init(&member->stats, MULTIS_CTR_MEMBER_N,
			      GFP_KERNEL_ACCOUNT))
		goto err_member;
	if (dst_cache_init(&member->dst_cache, GFP_KERNEL_ACCOUNT))
		goto err_stats;
	/* Zeroed: no key matches before the first lookup. */
	member->route_key = alloc_percpu_gfp(struct multis_flow_key,
					     GFP_KERNEL_ACCOUNT);
	if (!member->route_key)
		goto err_dst_cache;
	member->addr = *addr;
	return member;

err_dst_cache:
	dst_cache_destroy(&member->dst_cache);
err_stats:
	multis_stats_uninit(&member->stats);
err_member:
	kfree(member);
	return NULL;
}

/* Also from an RCU callback: releases the cached routes on every CPU. */
static void multis_member_free(struct multis_member *member)
{
	free_percpu(member->route_key);
	dst_cache_destroy(&member->dst_cache);
	multis_stats_uninit(&member->stats);
	kfree(member);
}

static void multis_member_free_rcu(struct rcu_head *rcu)
{
	multis_member_free(container_of(rcu, struct multis_member, rcu));
}

static struct multis_group *multis_group_alloc(const struct in6_addr *addr,
					       u32 flags)
{
	struct multis_group *group;

	group = kzalloc(sizeof(*group), GFP_KERNEL_ACCOUNT);
	if (!group)
		return NULL;
	if (multis_stats_init(&group->stats, MULTIS_CTR_N, GFP_KERNEL_ACCOUNT)) {
		kfree(group);
		return NULL;
	}
	group->addr = *addr;
	group->flags = flags;
	RCU_INIT_POINTER(group->members, NULL);
	return group;
}

static void multis_group_free(struct multis_group *group)
{
	multis_stats_uninit(&group->stats);
	kfree(group);
}

static void multis_group_free_rcu(struct rcu_head *rcu)
{
	multis_group_free(container_of(rcu, struct multis_group, rcu));
}

/* Publish @members (may be NULL) in @group; free the old array later. */
static void multis_group_publish(struct multis_net *pn,
				 struct multis_group *group,
				 struct multis_members *members)
{
	struct multis_members *old = multis_group_members(pn, group);

	rcu_assign_pointer(group->members, members);
	if (old)
		call_rcu(&old->rcu, multis_members_free_rcu);
}

static void multis_group_link(struct multis_net *pn,
			      struct multis_group *group)
{
	struct multis_group *pos;

	/* Keep group_list sorted: the dump's cursor is an address. */
	list_for_each_entry(pos, &pn->group_list, lnode)
		if (ipv6_addr_cmp(&pos->addr, &group->addr) > 0)
			break;
	list_add_tail(&group->lnode, &pos->lnode);
	hash_add_rcu(pn->groups, &group->hnode, multis_addr_key(&group->addr));
	pn->group_count++;
}

/*
 * Add the members @add[0..n-1] (sorted, unique, valid, none of them in the
 * group yet, within the limits) to @group, or to a new group @addr with
 * @flags if @group is NULL.  All or nothing: on error nothing has changed.
 */
int multis_group_join(struct multis_net *pn, struct multis_group *group,
		      const struct in6_addr *addr, u32 flags,
		      const struct in6_addr *add,
		      unsigned int n)
{
	struct multis_members *old, *members = NULL;
	unsigned int i, j, k, count;
	bool created = false;

	if (!group) {
		group = multis_group_alloc(addr, flags);
		if (!group)
			return -ENOMEM;
		created = true;
	}
	if (!n) {
		if (!created)
			return 0;	/* nothing to do: no new generation */
		goto commit;
	}

	old = multis_group_members(pn, group);
	count = old ? old->count : 0;
	members = multis_members_alloc(count + n);
	if (!members)
		goto err;

	/* Merge the two sorted lists; only the new members are allocated. */
	for (i = 0, j = 0, k = 0; k < count + n; k++) {
		if (j == n || (i < count &&
			       ipv6_addr_cmp(&old->member[i]->addr,
					     &add[j]) < 0)) {
			members->member[k] = old->member[i++];
			continue;
		}
		members->member[k] = multis_member_alloc(&add[j++]);
		if (!members->member[k])
			goto err_members;
	}

	multis_group_publish(pn, group, members);
commit:
	if (created)
		multis_group_link(pn, group);
	multis_net_changed(pn);
	return 0;

err_members:
	/*
	 * Free what this call allocated: walking the merge back, a member is
	 * @old's if it is the last of @old's not walked back yet (i of them
	 * were taken), else it is one of the j new ones.
	 */
	while (k--) {
		if (i && members->member[k] == old->member[i - 1])
			i--;
		else
			multis_member_free(members->member[k]);
	}
	kvfree(members);
err:
	if (created)
		multis_group_free(group);
	return -ENOMEM;
}

/*
 * Remove the members @del[0..n-1] (sorted, unique, every one of them in the
 * group) from @group.  Needs no memory when it empties the group.
 */
int multis_group_quit(struct multis_net *pn, struct multis_group *group,
		      const struct in6_addr *del, unsigned int n)
{
	struct multis_members *old = multis_group_members(pn, group);
	struct multis_members *members = NULL;
	unsigned int i, j, k;

	if (!n)
		return 0;
	if (old->count > n) {
		members = multis_members_alloc(old->count - n);
		if (!members)
			return -ENOMEM;
		for (i = 0, j = 0, k = 0; i < old->count; i++) {
			if (j < n && ipv6_addr_equal(&old->member[i]->addr,
						     &del[j]))
				j++;
			else
				members->member[k++] = old->member[i];
		}
	}

	multis_group_publish(pn, group, members);
	/* Readers of @old may still use the removed members: free them later. */
	for (i = 0, j = 0; i < old->count && j < n; i++) {
		if (!ipv6_addr_equal(&old->member[i]->addr, &del[j]))
			continue;
		call_rcu(&old->member[i]->rcu, multis_member_free_rcu);
		j++;
	}
	multis_net_changed(pn);
	return 0;
}

void multis_group_delete(struct multis_net *pn, struct multis_group *group)
{
	struct multis_members *members = multis_group_members(pn, group);
	unsigned int i;

	hash_del_rcu(&group->hnode);
	list_del(&group->lnode);
	pn->group_count--;
	/* Unpublished: what a reader still holds goes after a grace period. */
	if (members) {
		for (i = 0; i < members->count; i++)
			call_rcu(&members->member[i]->rcu,
				 multis_member_free_rcu);
		call_rcu(&members->rcu, multis_members_free_rcu);
	}
	call_rcu(&group->rcu, multis_group_free_rcu);
	multis_net_changed(pn);
}

void multis_group_clear(struct multis_net *pn)
{
	struct multis_group *group, *tmp;

	list_for_each_entry_safe(group, tmp, &pn->group_list, lnode)
		multis_group_delete(pn, group);
}

/* The namespace is going away: nothing can see its groups any more. */
void multis_group_uninit(struct multis_net *pn)
{
	multis_group_clear(pn);
}

void multis_group_reset_stats(struct multis_net *pn)
{
	struct multis_members *members;
	struct multis_group *group;
	unsigned int i;

	multis_stats_reset(&pn->stats);
	list_for_each_entry(group, &pn->group_list, lnode) {
		multis_stats_reset(&group->stats);
		members = multis_group_members(pn, group);
		for (i = 0; members && i < members->count; i++)
			multis_stats_reset(&members->member[i]->stats);
	}
}
