/*
 * clock_nanosleep straight to the kernel, preloaded ahead of libfaketime.
 *
 * libfaketime 0.9.10 (Debian 12) with FAKETIME_DONT_FAKE_MONOTONIC=1 still shifts the
 * absolute deadline of clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ...) by the fake
 * offset, and the kernel answers EINVAL (libfaketime issue 426). Python 3.11's time.sleep
 * sleeps exactly so, so every time.sleep in a process under libfaketime fails. Nothing
 * in the processes tests/test_faults.py runs under libfaketime sleeps on the wall clock,
 * so this passes every clock through unfaked; gettimeofday and clock_gettime stay faked.
 *
 * Built by tests/test_faults.py: gcc -O2 -shared -fPIC -o build/faketime/clock_nanosleep.so
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *request,
                    struct timespec *remain) {
    /* clock_nanosleep returns the error number; it leaves errno alone. */
    int saved = errno;
    long result = syscall(SYS_clock_nanosleep, clock_id, flags, request, remain);
    int error = result == -1 ? errno : 0;
    errno = saved;
    return error;
}
