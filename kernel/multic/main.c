// SPDX-License-Identifier: GPL-2.0
/*
 * multic: module parameters, per-namespace state, module init and exit.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"
#include "hook.h"
#include "multic.h"
#include "netlink.h"
#include "table.h"

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/stringify.h>
#include <net/net_namespace.h>

#include <uapi/linux/multicast_proxy.h>

/*
 * Writable by root at any time (0644), as multis's: every use reads them
 * afresh (READ_ONCE()), and a new limit applies to the next change only.
 */
unsigned int multic_max_groups = 10;
module_param_named(max_groups, multic_max_groups, uint, 0644);
MODULE_PARM_DESC(max_groups, "Distinct group addresses the entries of a namespace may map to (default 10)");

unsigned int multic_max_entries = 1024;
module_param_named(max_entries, multic_max_entries, uint, 0644);
MODULE_PARM_DESC(max_entries, "Entries per namespace (default 1024)");

u8 multic_marker_tos = MULTICAST_PROXY_MARKER_TOS;
module_param_named(marker_tos, multic_marker_tos, byte, 0644);
MODULE_PARM_DESC(marker_tos, "The TOS byte that marks a proxied copy (default "
		 __stringify(MULTICAST_PROXY_MARKER_TOS) ")");

unsigned int multic_net_id __read_mostly;

static int __net_init multic_net_init(struct net *net)
{
	struct multic_net *mn = multic_pernet(net);
	int ret;

	mutex_init(&mn->lock);
	memset(mn->hooked, 0, sizeof(mn->hooked));
	ret = multic_table_init(mn);
	if (ret)
		return ret;
	/* The namespace's own counters go with it: not charged to a request. */
	ret = multic_stats_init(&mn->stats, GFP_KERNEL);
	if (ret)
		goto err_table;
	/* No hook, no defragmentation yet: the first entry brings them (hook.c). */
	return 0;

err_table:
	multic_table_uninit(mn);
	return ret;
}

/* The hook goes first; the core waits for an RCU grace period before .exit. */
static void __net_exit multic_net_pre_exit(struct net *net)
{
	struct multic_net *mn = multic_pernet(net);

	mutex_lock(&mn->lock);
	multic_hook_detach(net, mn);
	mutex_unlock(&mn->lock);
}

static void __net_exit multic_net_exit(struct net *net)
{
	struct multic_net *mn = multic_pernet(net);

	multic_table_uninit(mn);
	multic_stats_uninit(&mn->stats);
	mutex_destroy(&mn->lock);
}

static struct pernet_operations multic_net_ops = {
	.init = multic_net_init,
	.pre_exit = multic_net_pre_exit,
	.exit = multic_net_exit,
	.id = &multic_net_id,
	.size = sizeof(struct multic_net),
};

static int __init multic_init(void)
{
	int ret;

	/* State first: the family must not hand out state that is not there. */
	ret = register_pernet_subsys(&multic_net_ops);
	if (ret)
		return ret;
	ret = multic_netlink_init();
	if (ret)
		goto err_pernet;

	pr_info("loaded: max_groups=%u max_entries=%u marker_tos=0x%02x\n",
		multic_max_groups, multic_max_entries, multic_marker_tos);
	return 0;

err_pernet:
	unregister_pernet_subsys(&multic_net_ops);
	return ret;
}

static void __exit multic_exit(void)
{
	multic_netlink_uninit();
	unregister_pernet_subsys(&multic_net_ops);
	/* Entries deleted earlier may still wait for their RCU callback. */
	rcu_barrier();
	WARN(multic_stats_live(), "multic: %ld per-CPU counter blocks leaked\n",
	     multic_stats_live());
}

module_init(multic_init);
module_exit(multic_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("multicast-proxy client: restores proxied unicast copies to their multicast group");
MODULE_AUTHOR("multicast-proxy developers");
