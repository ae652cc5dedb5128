// SPDX-License-Identifier: GPL-2.0
/*
 * multic: module parameters, per-namespace state, module init and exit.
 */

#include "hook.h"
#include "multic.h"
#include "netlink.h"
#include "table.h"

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

#include <uapi/linux/multicast_proxy.h>

unsigned int multic_max_groups = 10;
module_param_named(max_groups, multic_max_groups, uint, 0644);
MODULE_PARM_DESC(max_groups, "Distinct group addresses the entries of a namespace may map to (default 10)");

unsigned int multic_max_entries = 1024;
module_param_named(max_entries, multic_max_entries, uint, 0644);
MODULE_PARM_DESC(max_entries, "Entries per namespace (default 1024)");

u8 multic_marker_tos = MULTICAST_PROXY_MARKER_TOS;
module_param_named(marker_tos, multic_marker_tos, byte, 0644);
MODULE_PARM_DESC(marker_tos, "The TOS byte that marks a proxied copy (default 0xE0)");

static unsigned int multic_net_id __read_mostly;

struct multic_net *multic_net(const struct net *net)
{
	return net_generic(net, multic_net_id);
}

static int __net_init multic_net_init(struct net *net)
{
	struct multic_net *mn = multic_net(net);
	int ret;

	mutex_init(&mn->lock);
	mn->hooked = false;
	/* The namespace's own counters go with it: not charged to a request. */
	ret = multic_stats_init(&mn->stats, GFP_KERNEL);
	if (ret)
		return ret;
	ret = multic_table_init(mn);
	if (ret)
		goto err_stats;
	/* No hook, no defragmentation yet: the first entry brings them (hook.c). */
	return 0;

err_stats:
	multic_stats_free(&mn->stats);
	return ret;
}

/* The hook goes first; the core waits for an RCU grace period before .exit. */
static void __net_exit multic_net_pre_exit(struct net *net)
{
	struct multic_net *mn = multic_net(net);

	mutex_lock(&mn->lock);
	multic_hook_detach(net, mn);
	mutex_unlock(&mn->lock);
}

static void __net_exit multic_net_exit(struct net *net)
{
	struct multic_net *mn = multic_net(net);

	multic_table_destroy(mn);
	multic_stats_free(&mn->stats);
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

	ret = register_pernet_subsys(&multic_net_ops);
	if (ret)
		return ret;
	ret = multic_netlink_init();
	if (ret)
		goto err_pernet;
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
