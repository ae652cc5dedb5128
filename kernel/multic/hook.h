/* SPDX-License-Identifier: GPL-2.0 */

#ifndef _MULTIC_HOOK_H
#define _MULTIC_HOOK_H

#include "multic.h"

struct net;

int multic_hook_attach(struct net *net, struct multic_net *mn,
		       enum multic_family family);
void multic_hook_detach(struct net *net, struct multic_net *mn);
void multic_hook_sync(struct net *net, struct multic_net *mn);

#endif /* _MULTIC_HOOK_H */
