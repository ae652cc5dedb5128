/* SPDX-License-Identifier: GPL-2.0 */

#ifndef _MULTIC_HOOK_H
#define _MULTIC_HOOK_H

struct net;

int multic_hook_register(struct net *net);
void multic_hook_unregister(struct net *net);

#endif /* _MULTIC_HOOK_H */
