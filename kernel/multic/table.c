// SPDX-License-Identifier: GPL-2.0
/*
 * The entry table of a namespace and the distinct groups its entries map to.
 *
 * Entries live in a resizable hash table (RCU lookups on the data path) and,
 * in insertion order, on a list (dumps).  Each distinct group address has a
 * reference-counted object in a second hash table, keyed by the 16-byte
 * address (IPv4-mapped for IPv4), so the group limit counts both families
 * and is checked in constant time.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"
#include "multic.h"
#include "table.h"

#include <linux/build_bug.h>
#include <linux/err.h>
#include <linux/lockdep.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/rhashtable.h>
#include <linux/slab.h>

static_assert(sizeof(struct multic_key) == 20);

static const struct rhashtable_params multic_entry_params = {
	.key_len = sizeof(struct multic_key),
	.key_offset = offsetof(struct multic_entry, key),
	.head_offset = offsetof(struct multic_entry, node),
	.automatic_shrinking = true,
};

/* Only ever looked up under multic_net.lock: the data path has entries. */
static const struct rhashtable_params multic_group_params = {
	.key_len = sizeof(struct in6_addr),
	.key_offset = offsetof(struct multic_group, addr),
	.head_offset = offsetof(struct multic_group, node),
	.automatic_shrinking = true,
};

static struct multic_group *multic_group_find(struct multic_net *mn,
					      const struct in6_addr *addr)
{
	lockdep_assert_held(&mn->lock);
	return rhashtable_lookup_fast(&mn->groups, addr, multic_group_params);
}

/* A reference to group @addr, created if it is new; the caller keeps it. */
static struct multic_group *multic_group_get(struct multic_net *mn,
					     const struct in6_addr *addr)
{
	struct multic_group *group = multic_group_find(mn, addr);
	int ret;

	if (group) {
		group->refs++;
		return group;
	}
	group = kzalloc(sizeof(*group), GFP_KERNEL_ACCOUNT);
	if (!group)
		return ERR_PTR(-ENOMEM);
	group->addr = *addr;
	group->refs = 1;
	ret = rhashtable_insert_fast(&mn->groups, &group->node,
				     multic_group_params);
	if (ret) {
		kfree(group);
		return ERR_PTR(ret);
	}
	mn->group_count++;
	return group;
}

/*
 * Drop a reference multic_group_get() returned: no lookup.  The data path
 * may still read the address through an entry it found before the change:
 * the object goes after a grace period.
 */
static void multic_group_put(struct multic_net *mn, struct multic_group *group)
{
	if (--group->refs)
		return;
	rhashtable_remove_fast(&mn->groups, &group->node, multic_group_params);
	kfree_rcu(group, rcu);
	mn->group_count--;
}

/* @entry's group reference.  Caller holds multic_net.lock. */
static struct multic_group *multic_entry_ref(struct multic_net *mn,
					     const struct multic_entry *entry)
{
	return rcu_dereference_protected(entry->group,
					 lockdep_is_held(&mn->lock));
}

/* The address @entry maps to.  Caller holds multic_net.lock. */
const struct in6_addr *multic_entry_group(struct multic_net *mn,
					  const struct multic_entry *entry)
{
	return &multic_entry_ref(mn, entry)->addr;
}

/*
 * May @addr become a group of this namespace?  @freed is 1 when the change
 * also drops the last reference to another group.
 */
static int multic_group_check_limit(struct multic_net *mn,
				    const struct in6_addr *addr,
				    unsigned int freed,
				    struct compat_nlerr *err)
{
	unsigned int max_groups = READ_ONCE(multic_max_groups);

	if (multic_group_find(mn, addr) || mn->group_count - freed < max_groups)
		return 0;
	compat_nlerr_fmt(err, "group limit %u reached", max_groups);
	return -ENOSPC;
}

static struct multic_entry *multic_entry_new(const struct multic_key *key)
{
	struct multic_entry *entry = kzalloc(sizeof(*entry), GFP_KERNEL_ACCOUNT);

	if (!entry)
		return NULL;
	if (multic_stats_init(&entry->stats, GFP_KERNEL_ACCOUNT)) {
		kfree(entry);
		return NULL;
	}
	entry->key = *key;
	return entry;
}

static void multic_entry_free(struct multic_entry *entry)
{
	multic_stats_uninit(&entry->stats);
	kfree(entry);
}

static void multic_entry_free_rcu(struct rcu_head *rcu)
{
	multic_entry_free(container_of(rcu, struct multic_entry, rcu));
}

/* Every change of the entries moves the generation on; dumps notice. */
static void multic_table_changed(struct multic_net *mn)
{
	if (!++mn->generation)
		mn->generation = 1;
}

int multic_table_init(struct multic_net *mn)
{
	int ret;

	INIT_LIST_HEAD(&mn->entry_list);
	mn->entry_count = 0;
	memset(mn->family_entries, 0, sizeof(mn->family_entries));
	mn->group_count = 0;
	mn->generation = 1;
	mn->config_gen = get_random_u64();
	mn->restored = false;
	ret = rhashtable_init(&mn->groups, &multic_group_params);
	if (ret)
		return ret;
	ret = rhashtable_init(&mn->entries, &multic_entry_params);
	if (ret)
		rhashtable_destroy(&mn->groups);
	return ret;
}

static void multic_group_free(void *ptr, void *arg)
{
	kfree(ptr);
}

/*
 * The namespace is going away: the data path can no longer see the table
 * (its hook is gone and an RCU grace period has passed), nor can netlink.
 */
void multic_table_uninit(struct multic_net *mn)
{
	struct multic_entry *entry, *tmp;

	list_for_each_entry_safe(entry, tmp, &mn->entry_list, list)
		multic_entry_free(entry);
	INIT_LIST_HEAD(&mn->entry_list);
	rhashtable_destroy(&mn->entries);
	rhashtable_free_and_destroy(&mn->groups, multic_group_free, NULL);
}

/*
 * The data path's lookup, in an RCU read-side section: the entry for
 * (@server, @port), else the any-port entry of @server.
 */
struct multic_entry *multic_table_lookup(struct multic_net *mn,
					 const struct in6_addr *server,
					 __be16 port)
{
	struct multic_key key = { .server = *server, .port = port };
	struct multic_entry *entry;

	entry = rhashtable_lookup(&mn->entries, &key, multic_entry_params);
	if (entry || !port)
		return entry;
	key.port = 0;
	return rhashtable_lookup(&mn->entries, &key, multic_entry_params);
}

/* The entry with exactly @key.  Caller holds multic_net.lock. */
struct multic_entry *multic_table_find(struct multic_net *mn,
				       const struct multic_key *key)
{
	lockdep_assert_held(&mn->lock);
	return rhashtable_lookup_fast(&mn->entries, key, multic_entry_params);
}

/* NLM_F_REPLACE of an existing entry: map it to @group, keeping its counters. */
static int multic_entry_move(struct multic_net *mn, struct multic_entry *entry,
			     const struct in6_addr *group,
			     struct compat_nlerr *err)
{
	struct multic_group *old = multic_entry_ref(mn, entry), *ref;
	int ret;

	if (ipv6_addr_equal(&old->addr, group))
		return 0;
	ret = multic_group_check_limit(mn, group, old->refs == 1, err);
	if (ret)
		return ret;
	ref = multic_group_get(mn, group);
	if (IS_ERR(ref)) {
		compat_nlerr_fmt(err, "out of memory");
		return PTR_ERR(ref);
	}
	rcu_assign_pointer(entry->group, ref);
	multic_group_put(mn, old);
	multic_table_changed(mn);
	return 0;
}

/* Caller holds multic_net.lock. */
int multic_table_add(struct multic_net *mn, const struct multic_key *key,
		     const struct in6_addr *group, bool replace,
		     struct compat_nlerr *err)
{
	unsigned int max_entries = READ_ONCE(multic_max_entries);
	char server_str[MULTIC_KEYSTRLEN], group_str[INET6_ADDRSTRLEN];
	struct multic_group *ref;
	struct multic_entry *entry;
	int ret;

	entry = multic_table_find(mn, key);
	if (entry) {
		if (replace)
			return multic_entry_move(mn, entry, group, err);
		compat_nlerr_fmt(err, "entry %s already maps to %s",
				 multic_key_str(key, server_str),
				 multic_addr_str(multic_entry_group(mn, entry),
						 group_str));
		return -EEXIST;
	}

	if (mn->entry_count >= max_entries) {
		compat_nlerr_fmt(err, "entry limit %u reached", max_entries);
		return -ENOSPC;
	}
	ret = multic_group_check_limit(mn, group, 0, err);
	if (ret)
		return ret;

	entry = multic_entry_new(key);
	if (!entry) {
		compat_nlerr_fmt(err, "out of memory");
		return -ENOMEM;
	}
	ref = multic_group_get(mn, group);
	if (IS_ERR(ref)) {
		compat_nlerr_fmt(err, "out of memory");
		ret = PTR_ERR(ref);
		goto err_free;
	}
	/* Not visible to the data path yet: no barrier needed. */
	RCU_INIT_POINTER(entry->group, ref);
	ret = rhashtable_insert_fast(&mn->entries, &entry->node,
				     multic_entry_params);
	if (ret) {
		compat_nlerr_fmt(err, "cannot insert entry %s: error %d",
				 multic_key_str(key, server_str), ret);
		goto err_put;
	}
	list_add_tail(&entry->list, &mn->entry_list);
	mn->entry_count++;
	mn->family_entries[multic_key_family(key)]++;
	multic_table_changed(mn);
	return 0;

err_put:
	multic_group_put(mn, ref);
err_free:
	multic_entry_free(entry);
	return ret;
}

static void multic_entry_remove(struct multic_net *mn,
				struct multic_entry *entry)
{
	rhashtable_remove_fast(&mn->entries, &entry->node, multic_entry_params);
	list_del(&entry->list);
	multic_group_put(mn, multic_entry_ref(mn, entry));
	mn->entry_count--;
	mn->family_entries[multic_key_family(&entry->key)]--;
	call_rcu(&entry->rcu, multic_entry_free_rcu);
}

/* Caller holds multic_net.lock. */
int multic_table_del(struct multic_net *mn, const struct multic_key *key,
		     struct compat_nlerr *err)
{
	struct multic_entry *entry = multic_table_find(mn, key);
	char key_str[MULTIC_KEYSTRLEN];

	if (!entry) {
		compat_nlerr_fmt(err, "no entry for %s",
				 multic_key_str(key, key_str));
		return -ENOENT;
	}
	multic_entry_remove(mn, entry);
	multic_table_changed(mn);
	return 0;
}

/* Caller holds multic_net.lock. */
void multic_table_clear(struct multic_net *mn)
{
	struct multic_entry *entry, *tmp;

	lockdep_assert_held(&mn->lock);
	if (list_empty(&mn->entry_list))
		return;
	list_for_each_entry_safe(entry, tmp, &mn->entry_list, list)
		multic_entry_remove(mn, entry);
	multic_table_changed(mn);
}

/* Caller holds multic_net.lock. */
void multic_table_reset_stats(struct multic_net *mn)
{
	struct multic_entry *entry;

	lockdep_assert_held(&mn->lock);
	list_for_each_entry(entry, &mn->entry_list, list)
		multic_stats_reset(&entry->stats);
}
