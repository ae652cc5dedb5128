// SPDX-License-Identifier: GPL-2.0
/* The tracepoints of trace.h, defined once. */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"

#define CREATE_TRACE_POINTS
#include "trace.h"
