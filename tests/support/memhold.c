/* Test helper for the real-kernel probe tests: holds a known amount of memory, then sleeps.
 *
 *   memhold ANON_MIB [GUEST_MIB TOUCH_MIB [EXTRA_MAPPINGS]]
 *
 * Waits for one byte on stdin (so the test can first move it into a cgroup), maps ANON_MIB of
 * private anonymous memory and touches all of it; with GUEST_MIB, maps one anonymous region of
 * exactly that size (the "guest RAM", without transparent huge pages so the resident amount is
 * exact) and touches its first TOUCH_MIB; with EXTRA_MAPPINGS, adds that many small mappings (a
 * real qemu has hundreds, which is what makes its smaps long). Then prints "ready" and sleeps
 * until killed. Copies of it are named virt-launcher, qemu-system-x86_64, … by the tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static void touch(char *p, size_t n) {
	for (size_t i = 0; i < n; i += 4096)
		p[i] = 1;
}

static char *map(size_t n) {
	char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(3);
	}
	return p;
}

int main(int argc, char **argv) {
	char go;
	if (argc < 2 || read(0, &go, 1) != 1)
		return 2;
	size_t anon = strtoull(argv[1], NULL, 10) << 20;
	if (anon)
		touch(map(anon), anon);
	if (argc >= 4) {
		size_t guest = strtoull(argv[2], NULL, 10) << 20;
		size_t touched = strtoull(argv[3], NULL, 10) << 20;
		char *g = map(guest);
		madvise(g, guest, MADV_NOHUGEPAGE);
		touch(g, touched < guest ? touched : guest);
	}
	if (argc >= 5) {
		long extra = strtol(argv[4], NULL, 10);
		for (long i = 0; i < extra; i++) {
			/* Alternate protections so neighbouring mappings never merge into one. */
			char *p = mmap(NULL, 4096, (i % 2) ? PROT_READ : PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				return 3;
		}
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
