/* SPDX-License-Identifier: GPL-2.0 */

#ifndef _MULTIS_HOOK_H
#define _MULTIS_HOOK_H

struct multis_net;
struct net;

int multis_hook_attach(struct net *net, struct multis_net *pn);
void multis_hook_detach(struct net *net, struct multis_net *pn);
void multis_hook_sync(struct net *net, struct multis_net *pn);

#endif /* _MULTIS_HOOK_H */
