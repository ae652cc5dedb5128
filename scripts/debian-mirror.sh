#!/bin/sh
# Print the Debian mirror this machine's apt uses (deb822 .sources or one-line
# .list entries), e.g. http://deb.debian.org/debian; that one when none is found.
set -eu
m=$(grep -hsE '^URIs: .*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null |
	head -n1 | awk '{print $2}')
[ -n "$m" ] || m=$(grep -hsE '^deb .*/debian/? ' /etc/apt/sources.list \
	/etc/apt/sources.list.d/*.list 2>/dev/null | head -n1 |
	sed -E 's/^deb (\[[^]]*\] )?([^ ]+).*/\2/')
echo "${m:-http://deb.debian.org/debian}"
