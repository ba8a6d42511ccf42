/*
 * The processes of a KubeVirt launcher pod, as the real-node tests need them: one static binary that
 * behaves by the name it is run under (applet style, like busybox), so that /proc/PID/comm shows the
 * names KubeVirt's processes have.
 *
 *   pause                                  sleep until SIGTERM/SIGINT (the pod sandbox's pause)
 *   virt-launcher-monitor GUEST TOUCH HEAP start the launcher's processes (below) and wait for qemu;
 *                                          exit with qemu's status (137 when the kernel killed it)
 *   virt-launcher|virtqemud|virtlogd|virt-tail BYTES
 *                                          hold BYTES of touched private anonymous memory, then sleep
 *   qemu-system-x86_64 GUEST TOUCH HEAP    map GUEST bytes of anonymous guest RAM (one mapping of exactly
 *                                          that size, as qemu's memory backend is), touch TOUCH percent
 *                                          of it, and hold HEAP bytes of touched heap beside it
 *   memhold BYTES STEP MS                  grow by STEP bytes every MS milliseconds up to BYTES (the
 *                                          non-guest growth that gets qemu OOM-killed)
 *
 * Sizes are plain byte counts (busybox-static tools have no size suffixes either). Everything ends on
 * SIGTERM/SIGINT so a pod stops within its grace period.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_stop(int sig) { (void)sig; stop = 1; }

static void handle_stop(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static unsigned long long bytes_arg(int argc, char **argv, int i, const char *what) {
    char *end;
    unsigned long long v;
    if (i >= argc) {
        fprintf(stderr, "%s: missing %s\n", argv[0], what);
        exit(2);
    }
    errno = 0;
    v = strtoull(argv[i], &end, 10);
    if (errno || *end || end == argv[i]) {
        fprintf(stderr, "%s: %s must be a byte count, not %s\n", argv[0], what, argv[i]);
        exit(2);
    }
    return v;
}

/* Anonymous private memory of `len` bytes, the first `touch` bytes written (so resident). */
static char *hold(unsigned long long len, unsigned long long touch) {
    char *p;
    unsigned long long off;
    if (len == 0) return NULL;
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    for (off = 0; off < touch && off < len; off += 4096) p[off] = 1;
    return p;
}

static void sleep_until_stopped(void) {
    while (!stop) pause();
}

static int qemu(int argc, char **argv) {
    unsigned long long guest = bytes_arg(argc, argv, 1, "GUEST");
    unsigned long long pct = bytes_arg(argc, argv, 2, "TOUCH percent");
    unsigned long long heap = bytes_arg(argc, argv, 3, "HEAP");
    char *ram;
    if (pct > 100) pct = 100;
    ram = hold(guest, 0);
    /* qemu marks guest RAM MADV_DONTDUMP (dump-guest-core=off, KubeVirt's default); the different
     * flags also keep the kernel from merging it with the heap mapped next to it. */
    if (ram && madvise(ram, guest, MADV_DONTDUMP) != 0) perror("madvise");
    for (unsigned long long off = 0; ram && off < guest / 100 * pct; off += 4096) ram[off] = 1;
    /* qemu's own heap: a different size from the guest's, so only the guest mapping matches. */
    hold(heap, heap);
    sleep_until_stopped();
    return 0;
}

static int holder(int argc, char **argv) {
    unsigned long long n = bytes_arg(argc, argv, 1, "BYTES");
    hold(n, n);
    sleep_until_stopped();
    return 0;
}

static int memhold(int argc, char **argv) {
    unsigned long long max = bytes_arg(argc, argv, 1, "BYTES");
    unsigned long long step = bytes_arg(argc, argv, 2, "STEP");
    unsigned long long ms = bytes_arg(argc, argv, 3, "MS");
    unsigned long long held = 0;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (!stop && held < max) {
        hold(step, step);
        held += step;
        nanosleep(&ts, NULL);
    }
    sleep_until_stopped();
    return 0;
}

static pid_t spawn(char *const args[]) {
    pid_t pid = fork();
    if (pid == 0) {
        execv(args[0], args);
        perror(args[0]);
        _exit(127);
    }
    return pid;
}

/* Start the launcher's processes as children and wait for qemu, as virt-launcher-monitor does. */
static int monitor(int argc, char **argv) {
    char small[] = "16777216";
    char *launcher[] = {"/bin/virt-launcher", small, NULL};
    char *qemud[] = {"/bin/virtqemud", small, NULL};
    char *logd[] = {"/bin/virtlogd", "4194304", NULL};
    char *vm[] = {"/bin/qemu-system-x86_64", NULL, NULL, NULL, NULL};
    pid_t children[3], q;
    int status = 0, i;
    if (argc < 4) {
        fprintf(stderr, "usage: virt-launcher-monitor GUEST TOUCH HEAP\n");
        return 2;
    }
    vm[1] = argv[1], vm[2] = argv[2], vm[3] = argv[3];
    children[0] = spawn(launcher);
    children[1] = spawn(qemud);
    children[2] = spawn(logd);
    q = spawn(vm);
    while (waitpid(q, &status, 0) < 0 && errno == EINTR) {
        if (stop) kill(q, SIGTERM);
    }
    for (i = 0; i < 3; i++) kill(children[i], SIGTERM);
    while (wait(NULL) > 0) {
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int main(int argc, char **argv) {
    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    handle_stop();
    if (!strcmp(name, "pause")) {
        sleep_until_stopped();
        return 0;
    }
    if (!strcmp(name, "virt-launcher-monitor")) return monitor(argc, argv);
    if (!strcmp(name, "qemu-system-x86_64")) return qemu(argc, argv);
    if (!strcmp(name, "memhold")) return memhold(argc, argv);
    if (!strcmp(name, "virt-launcher") || !strcmp(name, "virtqemud") || !strcmp(name, "virtlogd") ||
        !strcmp(name, "virt-tail"))
        return holder(argc, argv);
    fprintf(stderr, "vmmem-fake: unknown name %s\n", name);
    return 2;
}
