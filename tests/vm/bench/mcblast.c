// SPDX-License-Identifier: GPL-2.0
/*
 * mcblast: send UDP datagrams as fast as possible for a while, the way an
 * application would, and say how many and how long the sender was blocked.
 *
 *   mcblast group   SECONDS SIZE SRC GROUP PORT
 *       one sendto() per datagram to the group (multis fans it out)
 *   mcblast unicast SECONDS SIZE SRC GROUP PORT MEMBER...
 *       the alternative: the application sends each datagram to every
 *       member itself, one sendto() per member
 *
 * Prints one JSON object: datagrams (application-level messages sent),
 * syscalls, seconds, and ns_per_datagram (time the sender spent per message).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int addr(struct sockaddr_in *sa, const char *ip, int port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in src, group, *members = NULL;
	unsigned long datagrams = 0, syscalls = 0;
	int unicast, nmembers = 0, fd, port, i;
	double seconds, start, elapsed;
	unsigned char ttl = 1, loop = 0;
	char buf[65536];
	size_t size;

	if (argc < 7) {
		fprintf(stderr, "usage: mcblast group|unicast SECONDS SIZE SRC GROUP PORT [MEMBER...]\n");
		return 2;
	}
	unicast = !strcmp(argv[1], "unicast");
	seconds = atof(argv[2]);
	size = (size_t)atoi(argv[3]);
	port = atoi(argv[6]);
	if (size > sizeof(buf) || addr(&src, argv[4], 0) || addr(&group, argv[5], port)) {
		fprintf(stderr, "mcblast: bad arguments\n");
		return 2;
	}
	if (unicast) {
		nmembers = argc - 7;
		members = calloc(nmembers ? nmembers : 1, sizeof(*members));
		for (i = 0; i < nmembers; i++)
			if (!members || addr(&members[i], argv[7 + i], port)) {
				fprintf(stderr, "mcblast: bad member %s\n", argv[7 + i]);
				return 2;
			}
	}
	memset(buf, 'x', size);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)) ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &src.sin_addr, sizeof(src.sin_addr))) {
		perror("mcblast: socket");
		return 1;
	}
	start = now();
	do {
		/* check the clock every 16 datagrams */
		for (i = 0; i < 16; i++, datagrams++) {
			if (!unicast) {
				sendto(fd, buf, size, 0, (struct sockaddr *)&group, sizeof(group));
				syscalls++;
				continue;
			}
			for (int m = 0; m < nmembers; m++, syscalls++)
				sendto(fd, buf, size, 0, (struct sockaddr *)&members[m],
				       sizeof(members[m]));
		}
		elapsed = now() - start;
	} while (elapsed < seconds);
	printf("{\"mode\": \"%s\", \"datagrams\": %lu, \"syscalls\": %lu, \"seconds\": %.3f, "
	       "\"ns_per_datagram\": %.0f}\n", argv[1], datagrams, syscalls, elapsed,
	       elapsed * 1e9 / datagrams);
	free(members);
	close(fd);
	return 0;
}
