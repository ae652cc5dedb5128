// SPDX-License-Identifier: GPL-2.0
/*
 * multis: module parameters, per-namespace state, module init and exit.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"
#include "group.h"
#include "hook.h"
#include "multis.h"
#include "netlink.h"

#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/stringify.h>
#include <net/net_namespace.h>

#include <uapi/linux/multicast_proxy.h>

/*
 * Writable by root at any time (0644), as multic's: every use reads them
 * afresh (READ_ONCE()), and a new limit applies to the next change only.
 */
unsigned int multis_max_groups = 10;
module_param_named(max_groups, multis_max_groups, uint, 0644);
MODULE_PARM_DESC(max_groups, "Most groups per network namespace (default 10)");

unsigned int multis_max_members = 128;
module_param_named(max_members, multis_max_members, uint, 0644);
MODULE_PARM_DESC(max_members, "Most members per group (default 128)");

u8 multis_marker_tos = MULTICAST_PROXY_MARKER_TOS;
module_param_named(marker_tos, multis_marker_tos, byte, 0644);
MODULE_PARM_DESC(marker_tos, "The TOS byte that marks a proxied copy (default "
		 __stringify(MULTICAST_PROXY_MARKER_TOS) ")");

unsigned int multis_net_id __read_mostly;

static int __net_init multis_net_init(struct net *net)
{
	struct multis_net *pn = multis_pernet(net);
	int ret;

	mutex_init(&pn->lock);
	pn->hooked = false;
	multis_group_init(pn);
	/* The namespace's own counters go with it: not charged to a request. */
	ret = multis_stats_init(&pn->stats, MULTIS_CTR_N, GFP_KERNEL);
	if (ret)
		return ret;
	/* No hook yet: the first group registers it (hook.c). */
	return 0;
}

/* The core waits for RCU readers (our hook) between pre_exit and exit. */
static void __net_exit multis_net_pre_exit(struct net *net)
{
	struct multis_net *pn = multis_pernet(net);

	mutex_lock(&pn->lock);
	multis_hook_detach(net, pn);
	mutex_unlock(&pn->lock);
}

/*
 * Nothing can use the state any more: no hook runs, and no netlink request
 * can either (no socket is left in a dying namespace, and at module unload
 * the family is gone already).  What readers might hold is freed after a
 * grace period anyway, and module exit waits for those callbacks.
 */
static void __net_exit multis_net_exit(struct net *net)
{
	struct multis_net *pn = multis_pernet(net);

	mutex_lock(&pn->lock);	/* for the accessors' lockdep checks */
	multis_group_uninit(pn);
	mutex_unlock(&pn->lock);
	multis_stats_uninit(&pn->stats);
	mutex_destroy(&pn->lock);
}

static struct pernet_operations multis_net_ops = {
	.init		= multis_net_init,
	.pre_exit	= multis_net_pre_exit,
	.exit		= multis_net_exit,
	.id		= &multis_net_id,
	.size		= sizeof(struct multis_net),
};

static int __init multis_init(void)
{
	int ret;

	/* State first: the family must not hand out state that is not there. */
	ret = register_pernet_subsys(&multis_net_ops);
	if (ret)
		return ret;
	ret = multis_netlink_init();
	if (ret)
		goto err_pernet;

	pr_info("loaded: max_groups=%u max_members=%u marker_tos=0x%02x\n",
		multis_max_groups, multis_max_members, multis_marker_tos);
	return 0;

err_pernet:
	unregister_pernet_subsys(&multis_net_ops);
	return ret;
}

/*
 * The reverse: the family first, so no request runs while the namespaces'
 * state goes; then per namespace the hook if it is in (waiting for the
 * packets inside it) and the state; then the RCU callbacks that free the last of it.
 */
static void __exit multis_exit(void)
{
	multis_netlink_uninit();
	unregister_pernet_subsys(&multis_net_ops);
	rcu_barrier();
	WARN(multis_stats_live(), "multis: %ld per-CPU counter blocks leaked\n",
	     multis_stats_live());
}

module_init(multis_init);
module_exit(multis_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("multicast-proxy sending side: multicast to unicast fan-out");
MODULE_AUTHOR("The multicast-proxy authors");
